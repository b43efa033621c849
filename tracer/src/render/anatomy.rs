//! A process's anatomy in text, as `ps`, `pmap` and `lsof` would summarize it: one line
//! of who it is, one of its memory by region, one of its descriptors by type, one of what
//! it listens on and talks to, and a warning when a network-facing process runs as root.
use std::io::Write;

use super::{
    term::printable,
    text::{bytes, signed_bytes},
};
use crate::model::anatomy::{Anatomy, Named, REGIONS};

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
    for w in &a.warnings {
        writeln!(out, "WARNING: {who}: {w}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::anatomy::{Anatomy, Identity, MapPath, RawAnatomy, RawFd, RawMap};

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
        super::lines(&mut out, "7 (app)", &Anatomy::build(&raw, None)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b'), "{text}");
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "process 7 (app): R (running), parent 1, user app (uid 0, euid 1000, gid 0), 4 threads",
                "  memory by region (rss, growth since tracing started): heap 4.0 KiB; total 4.0 KiB",
                "  descriptors: 3 open: 2 file, 1 pipe",
                r"  paths /tmp/\33[2Jevil x2",
            ]
        );
    }
}
