//! tracer's own cost, for the metrics: its CPU time (getrusage), its RSS (/proc/self/statm),
//! the kernel memory of its maps, and, with `--bpf-stats`, its programs' run time. The
//! maps and programs are found among tracer's own descriptors (/proc/self/fdinfo: a map's
//! `memlock`, a program's `prog_id`, `run_time_ns` and `run_cnt`); a program's name comes
//! from the kernel's info about its id. Run time is kept only while a `BPF_ENABLE_STATS`
//! descriptor is held: tracer holds one for the run when asked (it costs every program
//! two clock reads per run, so it is not the default), instead of the host-wide sysctl.
use std::{collections::HashMap, fs, os::fd::OwnedFd, path::PathBuf};

use anyhow::{Result, anyhow};

use super::metrics::OwnCost;

pub struct OwnMeter {
    /// Held for the run with `--bpf-stats`.
    _stats: Option<OwnedFd>,
    /// tracer's programs: their fdinfo and name.
    programs: Vec<(PathBuf, String)>,
    map_bytes: u64,
    page_size: u64,
}

fn field(info: &str, key: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

impl OwnMeter {
    /// Before the programs are loaded: turns run-time statistics on if asked.
    pub fn new(bpf_stats: bool) -> Result<Self> {
        let stats = if bpf_stats {
            Some(aya::sys::enable_stats(aya::sys::Stats::RunTime).map_err(|e| {
                anyhow!("cannot turn on eBPF program statistics (--bpf-stats; Linux 5.8 or later): {e}")
            })?)
        } else {
            None
        };
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Ok(OwnMeter {
            _stats: stats,
            programs: Vec::new(),
            map_bytes: 0,
            page_size: page.max(1) as u64,
        })
    }

    /// Once everything is attached: finds tracer's maps and programs.
    pub fn take_inventory(&mut self) {
        let names: HashMap<u32, String> = if self._stats.is_some() {
            aya::programs::loaded_programs()
                .filter_map(Result::ok)
                .map(|p| (p.id(), p.name_as_str().unwrap_or("").to_string()))
                .collect()
        } else {
            HashMap::new()
        };
        let Ok(dir) = fs::read_dir("/proc/self/fdinfo") else {
            return;
        };
        for e in dir.flatten() {
            let path = e.path();
            let Ok(info) = fs::read_to_string(&path) else {
                continue;
            };
            if info.contains("map_type:") {
                self.map_bytes += field(&info, "memlock:").unwrap_or(0);
            } else if let Some(id) = field(&info, "prog_id:")
                && let Some(name) = names.get(&(id as u32))
            {
                self.programs.push((path, name.clone()));
            }
        }
        self.programs.sort_by(|a, b| a.1.cmp(&b.1));
    }

    pub fn measure(&self) -> OwnCost {
        let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
        let cpu_seconds = usage.map_or(0.0, |u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        });
        let rss_pages = fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0);
        let programs = self
            .programs
            .iter()
            .filter_map(|(path, name)| {
                let info = fs::read_to_string(path).ok()?;
                Some((
                    name.clone(),
                    field(&info, "run_time_ns:")?,
                    field(&info, "run_cnt:")?,
                ))
            })
            .collect();
        OwnCost {
            cpu_seconds,
            rss_bytes: rss_pages * self.page_size,
            map_bytes: self.map_bytes,
            programs,
        }
    }
}
