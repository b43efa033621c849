//! Kernel memory of tracer's maps (issue 12: "kernel maps sized by what is traced, not by
//! pid_max"): tracer (all sections, and with `--threads`) watching an idle process, at this
//! machine's pid_max and at 4194304 (systemd's default, set for the measurement and put back
//! afterwards, also on error): the memlock of every map it holds (its /proc/PID/fdinfo),
//! beside its RSS.
use std::{ffi::OsString, fs, path::Path, time::Duration};

use anyhow::{Context, Result, bail};

use super::proc::{Proc, Watch, check_interrupted};

const PID_MAX: &str = "/proc/sys/kernel/pid_max";
/// systemd's default on 64-bit machines.
pub const SYSTEMD_PID_MAX: u32 = 4_194_304;

/// One measurement: pid_max, tracer's extra arguments, its maps' memlock and its RSS.
#[derive(Clone, Debug)]
pub struct Row {
    pub pid_max: u32,
    pub args: &'static str,
    pub maps_kib: u64,
    pub rss_kib: u64,
}

/// Puts pid_max back when dropped.
pub struct PidMax(String);

impl PidMax {
    pub fn set(v: u32) -> Result<Self> {
        let old = fs::read_to_string(PID_MAX).context("cannot read pid_max")?;
        fs::write(PID_MAX, v.to_string()).context("cannot set pid_max")?;
        Ok(PidMax(old.trim().to_string()))
    }
}

impl Drop for PidMax {
    fn drop(&mut self) {
        let _ = fs::write(PID_MAX, &self.0);
    }
}

/// Memlock of the BPF maps process `pid` holds, and its RSS, in KiB. A map held by
/// two descriptors (tracer keeps a second handle of one) counts once, by its id.
pub fn maps_and_rss(pid: i32) -> Result<(u64, u64)> {
    let mut bytes = 0;
    let mut seen = std::collections::BTreeSet::new();
    for fd in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let fd = fd?;
        let Ok(link) = fs::read_link(fd.path()) else {
            continue;
        };
        if !link.to_string_lossy().contains("bpf-map") {
            continue;
        }
        let info = fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))?;
        let id = info.lines().find_map(|l| l.strip_prefix("map_id:"));
        if !seen.insert(id.map(|v| v.trim().to_string())) {
            continue;
        }
        bytes += info
            .lines()
            .find_map(|l| l.strip_prefix("memlock:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Ok((bytes / 1024, rss))
}

fn one(tracer: &Path, idle_pid: u32, args: &'static str) -> Result<(u64, u64)> {
    let pid = idle_pid.to_string();
    let mut argv: Vec<OsString> = vec![tracer.into(), "--pid".into(), pid.into()];
    argv.extend(args.split_whitespace().map(OsString::from));
    let mut p = Proc::spawn(&argv, Watch::default())?;
    let timeout = Duration::from_secs(30);
    let attached = p.wait_line(|l| l.stderr && l.text.contains("tracer: tracing"), timeout);
    let measured = match attached {
        Some(_) => maps_and_rss(p.pid()),
        None => Err(anyhow::anyhow!(
            "tracer did not attach: {}",
            p.stderr_so_far()
        )),
    };
    p.signal(libc::SIGTERM);
    p.wait(timeout)?;
    measured
}

/// Measures at this machine's pid_max and at [`SYSTEMD_PID_MAX`].
pub fn measure(tracer: &Path, idle_pid: u32) -> Result<Vec<Row>> {
    let here: u32 = fs::read_to_string(PID_MAX)?.trim().parse()?;
    let mut rows = Vec::new();
    for pid_max in [here, SYSTEMD_PID_MAX] {
        let _guard = if pid_max != here {
            Some(PidMax::set(pid_max)?)
        } else {
            None
        };
        for args in ["", "--threads"] {
            check_interrupted()?;
            let (maps_kib, rss_kib) = one(tracer, idle_pid, args)?;
            eprintln!(
                "xtask bench: kernel memory at pid_max {pid_max} {args}: maps {maps_kib} KiB, rss {rss_kib} KiB"
            );
            rows.push(Row {
                pid_max,
                args,
                maps_kib,
                rss_kib,
            });
        }
    }
    if rows.is_empty() {
        bail!("nothing measured");
    }
    Ok(rows)
}
