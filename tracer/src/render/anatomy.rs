//! A process's anatomy in text, as `ps`, `pmap` and `lsof` would summarize it: one line
//! of who it is, one of its memory by region, one of its descriptors by type, one of what
//! it listens on and talks to, and a warning when a network-facing process runs as root.
use std::io::Write;

use super::{
    term::printable,
    text::{bytes, secs, signed_bytes},
};
use crate::model::anatomy::{Anatomy, Named, REGIONS};

/// A duration, to a tenth of a second under two minutes.
fn since(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else {
        secs(s)
    }
}

fn named(v: &[Named]) -> String {
    v.iter()
        .map(|n| match n.count {
            1 => printable(&n.name).into_owned(),
            c => format!("{} x{c}", printable(&n.name)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn lines(out: &mut dyn Write, who: &str, a: &Anatomy) -> std::io::Result<()> {
    let id = &a.who;
    let user = match &id.user {
        Some(u) => format!(
            "user {} (uid {}, euid {}, gid {})",
            printable(u),
            id.uid,
            id.euid,
            id.gid
        ),
        None => format!("uid {}, euid {}, gid {}", id.uid, id.euid, id.gid),
    };
    let when = if a.ended { " (last seen running)" } else { "" };
    writeln!(
        out,
        "process {who}{when}: {}, parent {}, {user}, {} thread{}",
        id.state,
        id.parent,
        id.threads,
        if id.threads == 1 { "" } else { "s" }
    )?;
    let regions: Vec<String> = REGIONS
        .iter()
        .filter_map(|k| a.regions.get(k).map(|r| (k, r)))
        .filter(|(_, r)| r.mappings > 0)
        .map(|(k, r)| match r.rss_growth_bytes {
            0 => format!("{k} {}", bytes(r.rss_bytes)),
            g => format!("{k} {} ({})", bytes(r.rss_bytes), signed_bytes(g)),
        })
        .collect();
    writeln!(
        out,
        "  memory by region (rss, growth since tracing started): {}; total {}",
        regions.join(", "),
        bytes(a.rss_bytes)
    )?;
    let f = &a.fds;
    let mut types: Vec<(&String, &u64)> = f.by_type.iter().collect();
    types.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    let types: Vec<String> = types
        .iter()
        .map(|(k, n)| {
            if k.as_str() == "socket" && !f.sockets.is_empty() {
                let mut s: Vec<(&String, &u64)> = f.sockets.iter().collect();
                s.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
                let s: Vec<String> = s.iter().map(|(k, n)| format!("{n} {k}")).collect();
                format!("{n} {k} ({})", s.join(", "))
            } else {
                format!("{n} {}", printable(k))
            }
        })
        .collect();
    writeln!(out, "  descriptors: {} open: {}", f.total, types.join(", "))?;
    let mut more = Vec::new();
    if !f.listening.is_empty() {
        more.push(format!("listening on {}", f.listening.join(", ")));
    }
    if !f.top_peers.is_empty() {
        more.push(format!("peers {}", named(&f.top_peers)));
    }
    if !f.top_paths.is_empty() {
        more.push(format!("paths {}", named(&f.top_paths)));
    }
    if !more.is_empty() {
        writeln!(out, "  {}", more.join("; "))?;
    }
    let z = &a.zombie_children;
    if z.count > 0 {
        let listed: Vec<String> = z
            .listed
            .iter()
            .map(|c| {
                let how = if c.since == "exit" { "" } else { "at least " };
                format!(
                    "{} ({}) {how}{}",
                    c.pid,
                    printable(&c.comm),
                    since(c.zombie_s)
                )
            })
            .collect();
        let more = z.count - z.listed.len() as u64;
        let more = if more > 0 {
            format!(", {more} more")
        } else {
            String::new()
        };
        writeln!(
            out,
            "  zombie children (exited, not reaped): {}: {}{more}",
            z.count,
            listed.join(", ")
        )?;
    }
    if let Some(o) = &a.orphaned {
        let name = o
            .parent_comm
            .as_deref()
            .map(|c| format!(" ({})", printable(c)))
            .unwrap_or_default();
        writeln!(
            out,
            "  orphaned: its parent {} died; now a child of {}{name}, for at least {}",
            o.parent_was,
            o.parent,
            since(o.orphaned_s)
        )?;
    }
    for w in &a.warnings {
        writeln!(out, "WARNING: {who}: {w}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::anatomy::{
        Anatomy, Identity, MapPath, Orphan, RawAnatomy, RawFd, RawMap, Zombie, ZombieChildren,
    };

    /// Another user's file names reach the terminal escaped; the lines say the parts.
    #[test]
    fn lines_escape_names_and_say_the_parts() {
        let raw = RawAnatomy {
            who: Identity {
                state: "R (running)".into(),
                parent: 1,
                euid: 1000,
                user: Some("app".into()),
                threads: 4,
                ..Default::default()
            },
            maps: vec![RawMap {
                path: MapPath::Heap,
                exec: false,
                size: 8192,
                rss: 4096,
            }],
            fds: vec![
                RawFd::Path("/tmp/\x1b[2Jevil".into()),
                RawFd::Path("/tmp/\x1b[2Jevil".into()),
                RawFd::Pipe,
            ],
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut a = Anatomy::build(&raw, None);
        a.zombie_children = ZombieChildren {
            count: 3,
            listed: vec![
                Zombie {
                    pid: 8,
                    comm: "\x1b[2Jkid".into(),
                    zombie_s: 2.5,
                    since: "exit",
                },
                Zombie {
                    pid: 9,
                    comm: "kid".into(),
                    zombie_s: 1.0,
                    since: "first_seen",
                },
            ],
        };
        a.orphaned = Some(Orphan {
            parent_was: 6,
            parent: 1,
            parent_comm: Some("init".into()),
            orphaned_s: 3.0,
        });
        super::lines(&mut out, "7 (app)", &a).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b'), "{text}");
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "process 7 (app): R (running), parent 1, user app (uid 0, euid 1000, gid 0), 4 threads",
                "  memory by region (rss, growth since tracing started): heap 4.0 KiB; total 4.0 KiB",
                "  descriptors: 3 open: 2 file, 1 pipe",
                r"  paths /tmp/\33[2Jevil x2",
                r"  zombie children (exited, not reaped): 3: 8 (\33[2Jkid) 2.5 s, 9 (kid) at least 1.0 s, 1 more",
                "  orphaned: its parent 6 died; now a child of 1 (init), for at least 3.0 s",
            ]
        );
    }
}
