//! What the benchmark changes on the machine and what it reads about it: the
//! `kernel.bpf_stats_enabled` sysctl (restored on drop), tracefs, the peers (installed with
//! apt-get when missing), and the machine description for the results.
use std::{
    collections::BTreeMap,
    fs,
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context, Result};

use super::tools::Peer;

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Sets `kernel.bpf_stats_enabled` as asked and puts the old value back when dropped
/// (also on error and Ctrl-C, which the benchmark turns into an error).
pub struct BpfStats {
    original: String,
}

impl BpfStats {
    pub fn new() -> Result<BpfStats> {
        let original = fs::read_to_string(BPF_STATS)
            .with_context(|| format!("cannot read {BPF_STATS}"))?
            .trim()
            .to_string();
        Ok(BpfStats { original })
    }

    pub fn original(&self) -> &str {
        &self.original
    }

    pub fn set(&self, on: bool) -> Result<()> {
        fs::write(BPF_STATS, if on { "1" } else { "0" })
            .with_context(|| format!("cannot write {BPF_STATS}"))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Err(e) = fs::write(BPF_STATS, &self.original) {
            eprintln!(
                "xtask bench: could not restore kernel.bpf_stats_enabled={}: {e}",
                self.original
            );
        }
    }
}

/// bpftrace and perf trace read tracepoint formats from tracefs. Mounts it if it is not
/// mounted; returns a note saying so (it is left mounted).
pub fn ensure_tracefs() -> Option<String> {
    let root = Path::new("/sys/kernel/tracing");
    if root.join("events").is_dir() {
        return None;
    }
    let ok = Command::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .status()
        .is_ok_and(|s| s.success());
    Some(if ok {
        "tracefs was not mounted; the benchmark mounted it at /sys/kernel/tracing (left mounted)"
            .into()
    } else {
        "tracefs is not mounted and mounting it failed; bpftrace and perf trace may fail".into()
    })
}

fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.stdin(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

fn peer_version(p: Peer) -> Option<String> {
    first_line(Command::new(p.name()).args(p.version_args()))
}

/// Each peer's version, or why it is not available. Missing peers are installed with
/// apt-get first (after one `apt-get update`).
pub fn ensure_peers(peers: &[Peer]) -> BTreeMap<Peer, Result<String, String>> {
    let mut found: BTreeMap<Peer, Option<String>> =
        peers.iter().map(|&p| (p, peer_version(p))).collect();
    let missing: Vec<Peer> = found
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(&p, _)| p)
        .collect();
    let mut install_error = BTreeMap::new();
    if !missing.is_empty() {
        eprintln!(
            "xtask bench: installing {} with apt-get",
            missing
                .iter()
                .map(|p| p.package())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let updated = Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        for p in missing {
            let ok = updated
                && Command::new("apt-get")
                    .args(["install", "-y", p.package()])
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .is_ok_and(|s| s.success());
            if !ok {
                install_error.insert(
                    p,
                    if updated {
                        format!("apt-get install {} failed", p.package())
                    } else {
                        "apt-get update failed".to_string()
                    },
                );
            }
            found.insert(p, peer_version(p));
        }
    }
    found
        .into_iter()
        .map(|(p, v)| {
            let r = v.ok_or_else(|| {
                let why = install_error
                    .get(&p)
                    .cloned()
                    .unwrap_or_else(|| "does not run".into());
                format!("{} not installed ({why})", p.name())
            });
            (p, r)
        })
        .collect()
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Rows of the "Machine" table.
pub fn machine(workspace: &Path) -> Vec<(String, String)> {
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim())
        })
        .unwrap_or("unknown")
        .to_string();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("unknown".into(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    let git = |args: &[&str]| first_line(Command::new("git").arg("-C").arg(workspace).args(args));
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_default();
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some();
    let date = first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let load = read("/proc/loadavg");
    let mut rows = vec![
        ("date".to_string(), date.unwrap_or_default()),
        (
            "kernel".into(),
            read("/proc/sys/kernel/osrelease").trim().into(),
        ),
        ("CPU".into(), format!("{cpu}, {cpus} CPUs")),
        ("memory".into(), mem_gib),
        (
            "OS".into(),
            format!("Debian {}", read("/etc/debian_version").trim()),
        ),
        (
            "load average at start".into(),
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "tracer".into(),
            format!(
                "commit {commit} ({branch}){}, release build",
                if dirty { " + uncommitted changes" } else { "" }
            ),
        ),
    ];
    for (name, cmd) in [
        ("dd", vec!["dd", "--version"]),
        ("perf", vec!["perf", "--version"]),
        ("strace", vec!["strace", "-V"]),
        ("bpftrace", vec!["bpftrace", "--version"]),
        ("rustc", vec!["rustc", "--version"]),
    ] {
        let v = first_line(Command::new(cmd[0]).args(&cmd[1..]))
            .unwrap_or_else(|| "not installed".into());
        rows.push((name.to_string(), v));
    }
    rows
}
