//! Memory, OOM kills and file descriptors of traced processes (pure: no I/O).
//!
//! Inputs: what the kernel counted ([`KernelMem`], from the syscalls and `rss_stat`), what
//! /proc said at start and every sampling tick ([`ProcReading`], kept in a [`MemTrack`]),
//! and OOM-kill events. Output: each process's reports since tracing started (a
//! [`MemSample`], made by `collect`), and from two of them the `memory`, `fds` and
//! `oom_kills` parts of a report's window.
use std::collections::BTreeMap;

use serde::Serialize;
use tracer_common::{
    event::{self, EventData, RawEvent},
    memory::{MemSyscalls, RssSnapshot},
};

/// errno values counted as descriptor exhaustion.
pub const EMFILE: u32 = 24;
pub const ENFILE: u32 = 23;
/// A warning is shown when open descriptors reach this share of RLIMIT_NOFILE.
pub const FD_WARN_RATIO: f64 = 0.8;
/// Limits at or above this are "no limit" (cgroup v1 writes 2^63 rounded down to pages).
pub const NO_LIMIT: u64 = 1 << 60;
/// Samples kept for the growth-rate fit; beyond, every other one is dropped.
const MAX_SERIES: usize = 20_000;

/// RSS split the way the kernel accounts it, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rss {
    pub anon_bytes: u64,
    pub file_bytes: u64,
    pub shmem_bytes: u64,
    pub swap_bytes: u64,
}

impl Rss {
    /// Resident bytes (anon + file + shmem; swap is not resident).
    pub fn total(&self) -> u64 {
        self.anon_bytes + self.file_bytes + self.shmem_bytes
    }
}

/// A memory cgroup's limit and usage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CgroupMem {
    /// Path inside the memory hierarchy, e.g. `/system.slice/app.service`.
    pub path: String,
    /// `memory.limit_in_bytes` (v1) or `memory.max` (v2); None when unlimited.
    pub limit_bytes: Option<u64>,
    /// `memory.usage_in_bytes` (v1) or `memory.current` (v2).
    pub usage_bytes: u64,
}

/// One reading of /proc/PID/{status,stat,limits,cgroup,fd} (and the cgroup's files).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcReading {
    /// Seconds since tracing started.
    pub t_s: f64,
    /// None once the process has no memory (a zombie).
    pub rss: Option<Rss>,
    pub vm_size: u64,
    pub vm_data: u64,
    pub minflt: u64,
    pub majflt: u64,
    pub fds: Option<u64>,
    /// Soft limits; None = unlimited or unknown.
    pub nofile_limit: Option<u64>,
    pub as_limit: Option<u64>,
    pub data_limit: Option<u64>,
    pub cgroup: Option<CgroupMem>,
    /// End of the `[heap]` mapping (the program break rounded up to a page), or the heap
    /// start when there is no heap yet. Read only for the baseline.
    pub brk: Option<u64>,
    /// Where the heap begins (`start_brk` in /proc/PID/stat): changes only at an exec.
    pub start_brk: Option<u64>,
}

/// What the kernel side counted for one process (cumulative since attach).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelMem {
    pub sys: MemSyscalls,
    /// The newest RSS snapshot over CPUs, if `rss_stat` fired for the process.
    pub rss: Option<RssSnapshot>,
    /// Highest resident pages seen by `rss_stat` (0 if never).
    pub peak_pages: u64,
    /// (minor, major) fault counts when the process's memory was torn down at its exit.
    pub exit_faults: Option<(u64, u64)>,
}

impl KernelMem {
    /// Folds one CPU's RSS snapshot in: the newest wins, the peak is the maximum.
    pub fn add_cpu_snapshot(&mut self, s: &RssSnapshot) {
        if s.exit_ts_ns != 0 {
            // Counts only grow: the largest is the latest.
            let (min, maj) = self.exit_faults.unwrap_or_default();
            self.exit_faults = Some((min.max(s.exit_minflt), maj.max(s.exit_majflt)));
        }
        if s.ts_ns == 0 {
            return;
        }
        self.peak_pages = self.peak_pages.max(s.peak_pages);
        if self.rss.is_none_or(|cur| s.ts_ns > cur.ts_ns) {
            self.rss = Some(*s);
        }
    }
}

/// Everything known about one traced process's memory over the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemTrack {
    /// Launched by tracer and counted from its exec: the baseline reading was taken just
    /// before the exec, so RSS and heap start from the new program's (empty) ones.
    pub launched: bool,
    pub start: Option<ProcReading>,
    /// The newest reading (the last one while the process was alive, or of its zombie).
    pub last: Option<ProcReading>,
    /// (t_s, rss bytes, vm_size, vm_data) of every reading with memory, for the fits.
    pub series: Vec<[f64; 4]>,
    /// Launched: descriptors its exec closes (close-on-exec), pre-added to the kernel's
    /// `fds_opened` so that the exec's closes cancel out.
    pub fd_seed: u64,
    /// (t_s, open descriptors) of the readings that counted them (about one a second),
    /// for the descriptors' growth.
    pub fd_series: Vec<[f64; 2]>,
    /// When a report's reading first saw a call fail with EMFILE (s since tracing
    /// started; the call was made in the window before it).
    pub first_emfile_s: Option<f64>,
}

impl MemTrack {
    pub fn new(launched: bool, start: Option<ProcReading>) -> Self {
        let mut t = MemTrack {
            launched,
            ..Default::default()
        };
        if let Some(s) = start {
            t.push(s);
        }
        t
    }

    /// Adds a reading; the first one is the baseline.
    pub fn push(&mut self, r: ProcReading) {
        if let Some(rss) = r.rss {
            // A launched command's baseline is read before its exec, which replaces the
            // memory: it starts from nothing.
            let before_exec = self.launched && self.start.is_none();
            let (total, vm_size, vm_data) = if before_exec {
                (0, 0, 0)
            } else {
                (rss.total(), r.vm_size, r.vm_data)
            };
            if self.series.len() >= MAX_SERIES {
                let mut i = 0;
                self.series.retain(|_| {
                    i += 1;
                    i % 2 == 0
                });
            }
            self.series
                .push([r.t_s, total as f64, vm_size as f64, vm_data as f64]);
        }
        // Descriptors are counted at every fourth reading; the others repeat the count.
        if let Some(n) = r.fds
            && r.rss.is_some()
            && self
                .fd_series
                .last()
                .is_none_or(|l| r.t_s - l[0] >= FD_SAMPLE_S)
        {
            if self.fd_series.len() >= MAX_SERIES {
                let mut i = 0;
                self.fd_series.retain(|_| {
                    i += 1;
                    i % 2 == 0
                });
            }
            self.fd_series.push([r.t_s, n as f64]);
        }
        if self.start.is_none() {
            self.start = Some(r.clone());
        }
        self.last = Some(r);
    }

    /// Notes the EMFILE failures counted so far, at the latest reading.
    pub fn note_emfile(&mut self, emfile: u64) {
        if emfile > 0 && self.first_emfile_s.is_none() {
            self.first_emfile_s = Some(self.last.as_ref().map_or(0.0, |l| l.t_s));
        }
    }
}

/// Least time between two descriptor samples of the growth fit (they are counted once a
/// second).
const FD_SAMPLE_S: f64 = 0.9;

/// Fewest samples a growth rate is fitted from (two points are a difference, not a fit).
pub const MIN_FIT_SAMPLES: usize = 3;

/// Least-squares slope of y over t (units of y per second); None with fewer than
/// [`MIN_FIT_SAMPLES`] points or no spread in time.
pub fn fit_slope(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let n = points.clone().count() as f64;
    if n < MIN_FIT_SAMPLES as f64 {
        return None;
    }
    let (st, sy) = points
        .clone()
        .fold((0.0, 0.0), |(a, b), (t, y)| (a + t, b + y));
    let (mt, my) = (st / n, sy / n);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (t, y) in points {
        sxx += (t - mt) * (t - mt);
        sxy += (t - mt) * (y - my);
    }
    (sxx > 1e-9).then(|| sxy / sxx)
}

/// Seconds until `used` growing at `rate` bytes/s reaches `limit`; None when it does not
/// grow or there is no limit. 0 when already at or over the limit.
pub fn eta_s(used: u64, limit: Option<u64>, rate: f64) -> Option<f64> {
    let limit = limit.filter(|&l| l < NO_LIMIT)?;
    if rate <= 0.0 || !rate.is_finite() {
        return None;
    }
    Some(limit.saturating_sub(used) as f64 / rate)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MmapReport {
    pub anon_mapped_bytes: u64,
    pub file_mapped_bytes: u64,
    /// By munmap, and by mremap shrinking a mapping.
    pub unmapped_bytes: u64,
    /// By mremap growing a mapping.
    pub remap_grown_bytes: u64,
    /// anon + file + remap grown - unmapped.
    pub net_bytes: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RssReport {
    pub start_bytes: u64,
    pub end_bytes: u64,
    pub peak_bytes: u64,
    pub start: Rss,
    pub end: Rss,
    /// Least-squares slope of RSS over the samples of the run (4 per second); 0 with
    /// fewer than 3 samples.
    pub growth_bytes_per_s: f64,
    /// Samples the slope was fitted from.
    pub growth_samples: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultReport {
    pub minor: u64,
    pub major: u64,
}

/// The limit that will be reached first at the current growth rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LimitEta {
    /// `"cgroup"`, `"RLIMIT_AS"` or `"RLIMIT_DATA"`.
    pub limit: &'static str,
    pub limit_bytes: u64,
    pub used_bytes: u64,
    /// Seconds until it is reached at `rate_bytes_per_s` (0: already reached).
    pub eta_s: f64,
    pub rate_bytes_per_s: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LimitsReport {
    pub cgroup: Option<CgroupMem>,
    pub rlimit_as_bytes: Option<u64>,
    pub rlimit_data_bytes: Option<u64>,
    /// Present when memory grows and a limit applies.
    pub eta: Option<LimitEta>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MemoryReport {
    pub brk_start: u64,
    pub brk_end: u64,
    pub brk_growth_bytes: i64,
    pub mmap: MmapReport,
    pub rss: RssReport,
    /// Virtual memory now (VmSize) and its data part (VmData: heap and private writable
    /// mappings), from /proc/PID/status (the last reading while the process lived).
    pub vm_size_bytes: u64,
    pub vm_data_bytes: u64,
    pub page_faults: FaultReport,
    pub limits: LimitsReport,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FdReport {
    /// Open descriptors when tracing started (/proc/PID/fd).
    pub start: u64,
    /// start + created - closed, from the syscalls.
    pub end: u64,
    /// Highest count reached (from the syscalls).
    pub peak: u64,
    pub opened: u64,
    pub closed: u64,
    /// RLIMIT_NOFILE (soft); None when unlimited or unknown.
    pub limit: Option<u64>,
    pub emfile_errors: u64,
    pub enfile_errors: u64,
    /// /proc/PID/fd now, while the process lives (a cross-check of `end`).
    pub proc_now: Option<u64>,
    /// Set when the count reached 80% of the limit, or EMFILE/ENFILE occurred (worded by
    /// `render`).
    pub warning: Option<FdWarning>,
    /// Least-squares slope of the open descriptors over the readings since tracing
    /// started (one a second), per second; 0 with fewer than [`MIN_FIT_SAMPLES`].
    pub growth_per_s: f64,
    /// While they grow: seconds until `limit` is reached at that rate.
    pub eta_s: Option<f64>,
    /// Seconds since tracing started at the first reading that saw an EMFILE failure
    /// (the call failed in the report window that ended then).
    pub first_emfile_s: Option<f64>,
}

/// What makes a descriptor count worth a warning: each concern that applies, in order
/// (several processes' concerns, for a merged report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdWarning(pub Vec<FdConcern>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdConcern {
    /// The count reached `peak` of `limit` (at least [`FD_WARN_RATIO`] of it); `now` is
    /// the count at the end, lower when it has fallen since.
    NearLimit { peak: u64, limit: u64, now: u64 },
    /// Calls that failed with EMFILE (the per-process limit).
    Emfile(u64),
    /// Calls that failed with ENFILE (the system's limit).
    Enfile(u64),
}

/// One OOM kill, anywhere on the machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OomReport {
    /// Seconds since tracing started.
    pub t_s: f64,
    pub pid: u32,
    pub comm: String,
    pub anon_rss_bytes: u64,
    pub file_rss_bytes: u64,
    pub shmem_rss_bytes: u64,
    pub swap_bytes: u64,
    pub total_vm_bytes: u64,
    /// Path of the victim's memory cgroup (its last component if it could not be found).
    pub cgroup: String,
    pub traced: bool,
}

fn comm(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl OomReport {
    /// `cgroup_path` resolves a cgroup id to its path (None when it is gone).
    pub fn from_event(
        e: &RawEvent,
        t0_ns: u64,
        cgroup_path: &dyn Fn(u64) -> Option<String>,
    ) -> Option<Self> {
        let EventData::OomKill(k) = e.data else {
            return None;
        };
        Some(OomReport {
            t_s: e.header.ts_ns.saturating_sub(t0_ns) as f64 / 1e9,
            pid: e.header.tgid,
            comm: comm(&k.comm),
            anon_rss_bytes: k.anon_rss,
            file_rss_bytes: k.file_rss,
            shmem_rss_bytes: k.shmem_rss,
            swap_bytes: k.swap,
            total_vm_bytes: k.total_vm,
            cgroup: cgroup_path(k.cgroup_id).unwrap_or_else(|| comm(&k.cgroup_name)),
            traced: k.traced != 0 && e.header.slot != event::UNTRACED_SLOT,
        })
    }
}

/// The memory report of one process. While it lives (its last reading has memory), the
/// end is /proc's exact numbers; once it is gone, the kernel's last `rss_stat` snapshot
/// before its exit.
pub fn memory_report(track: &MemTrack, k: &KernelMem, page_size: u64) -> MemoryReport {
    let start = track.start.clone().unwrap_or_default();
    let last = track.last.clone().unwrap_or_default();
    let start_rss = if track.launched {
        Rss::default()
    } else {
        start.rss.unwrap_or_default()
    };
    let kernel_rss = k.rss.map(|s| Rss {
        anon_bytes: s.anon_pages * page_size,
        file_bytes: s.file_pages * page_size,
        shmem_bytes: s.shmem_pages * page_size,
        swap_bytes: s.swap_pages * page_size,
    });
    // Alive at the last reading: /proc is exact. Gone (a zombie, or no longer readable):
    // the kernel's last snapshot before the exit.
    let end_rss = match (last.rss, kernel_rss) {
        (Some(r), _) => r,
        (None, Some(r)) => r,
        (None, None) => start_rss,
    };
    let peak = track
        .series
        .iter()
        .map(|p| p[1] as u64)
        .chain([k.peak_pages * page_size, end_rss.total(), start_rss.total()])
        .max()
        .unwrap_or(0);
    // The fit uses the samples, plus the kernel's end point when the process is gone.
    let mut pts: Vec<(f64, f64)> = track.series.iter().map(|p| (p[0], p[1])).collect();
    if last.rss.is_none() && kernel_rss.is_some() {
        pts.push((last.t_s, end_rss.total() as f64));
    }
    let rate = fit_slope(pts.iter().copied()).unwrap_or(0.0);
    // The last (VmSize, VmData) seen while the process had memory.
    let alive_vm = track
        .series
        .last()
        .map_or((0, 0), |p| (p[2] as u64, p[3] as u64));
    let vm_rate = fit_slope(track.series.iter().map(|p| (p[0], p[2]))).unwrap_or(0.0);
    let data_rate = fit_slope(track.series.iter().map(|p| (p[0], p[3]))).unwrap_or(0.0);

    // A launched command's heap starts at its exec: empty, at start_brk. So does the heap
    // of a traced process that exec'd (its start_brk moved); otherwise the baseline's.
    let exec_heap = k.sys.start_brk != 0
        && (track.launched || start.start_brk.is_some_and(|s| s != k.sys.start_brk));
    let brk_start = if exec_heap {
        k.sys.start_brk
    } else {
        start.brk.unwrap_or(0)
    };
    let brk_end = if k.sys.brk != 0 { k.sys.brk } else { brk_start };
    let s = &k.sys;
    let unmapped = s.unmapped + s.remap_shrunk;
    let mmap = MmapReport {
        anon_mapped_bytes: s.anon_mapped,
        file_mapped_bytes: s.file_mapped,
        unmapped_bytes: unmapped,
        remap_grown_bytes: s.remap_grown,
        net_bytes: (s.anon_mapped + s.file_mapped + s.remap_grown) as i64 - unmapped as i64,
    };
    let cgroup = last.cgroup.clone().or(start.cgroup.clone());
    let mut etas: Vec<LimitEta> = Vec::new();
    if let Some(cg) = &cgroup {
        // The cgroup's usage grows with the process's RSS.
        if let Some(e) = eta_s(cg.usage_bytes, cg.limit_bytes, rate) {
            etas.push(LimitEta {
                limit: "cgroup",
                limit_bytes: cg.limit_bytes.unwrap_or(0),
                used_bytes: cg.usage_bytes,
                eta_s: e,
                rate_bytes_per_s: rate,
            });
        }
    }
    for (name, limit, used, r) in [
        ("RLIMIT_AS", last.as_limit, last.vm_size, vm_rate),
        ("RLIMIT_DATA", last.data_limit, last.vm_data, data_rate),
    ] {
        if let Some(e) = eta_s(used, limit, r) {
            etas.push(LimitEta {
                limit: name,
                limit_bytes: limit.unwrap_or(0),
                used_bytes: used,
                eta_s: e,
                rate_bytes_per_s: r,
            });
        }
    }
    // A process that is gone no longer grows toward anything.
    let gone = track.last.as_ref().is_some_and(|l| l.rss.is_none());
    let eta = etas
        .into_iter()
        .filter(|_| !gone)
        .min_by(|a, b| a.eta_s.total_cmp(&b.eta_s));
    MemoryReport {
        brk_start,
        brk_end,
        brk_growth_bytes: brk_end as i64 - brk_start as i64,
        mmap,
        rss: RssReport {
            start_bytes: start_rss.total(),
            end_bytes: end_rss.total(),
            peak_bytes: peak,
            start: start_rss,
            end: end_rss,
            growth_bytes_per_s: rate,
            growth_samples: pts.len(),
        },
        vm_size_bytes: if last.rss.is_some() {
            last.vm_size
        } else {
            alive_vm.0
        },
        vm_data_bytes: if last.rss.is_some() {
            last.vm_data
        } else {
            alive_vm.1
        },
        page_faults: {
            // Gone: the counts at its exit, as the kernel saw them, unless /proc (a zombie
            // read before it was reaped) said more.
            let (mut min, mut maj) = (last.minflt, last.majflt);
            if last.rss.is_none()
                && let Some((kmin, kmaj)) = k.exit_faults
            {
                (min, maj) = (min.max(kmin), maj.max(kmaj));
            }
            FaultReport {
                minor: min.saturating_sub(start.minflt),
                major: maj.saturating_sub(start.majflt),
            }
        },
        limits: LimitsReport {
            cgroup,
            rlimit_as_bytes: last.as_limit.or(start.as_limit),
            rlimit_data_bytes: last.data_limit.or(start.data_limit),
            eta,
        },
    }
}

/// The descriptor report of one process. `emfile`/`enfile` count the process's failed
/// syscalls with that errno.
pub fn fd_report(track: &MemTrack, k: &KernelMem, emfile: u64, enfile: u64) -> FdReport {
    let seed = track.fd_seed;
    let all = track.start.as_ref().and_then(|s| s.fds).unwrap_or(0);
    // What the command begins with after its exec (launched), or held at attach.
    let start = all.saturating_sub(seed);
    let s = &k.sys;
    let opened = s.fds_opened.saturating_sub(seed);
    let closed = s.fds_closed.saturating_sub(seed);
    let end = (start + opened).saturating_sub(closed);
    let peak = (start + s.fds_peak_net).max(start).max(end);
    let last = track.last.as_ref();
    let limit = last
        .and_then(|l| l.nofile_limit)
        .or(track.start.as_ref().and_then(|s| s.nofile_limit));
    let proc_now = last.filter(|l| l.rss.is_some()).and_then(|l| l.fds);
    let growth_per_s = fit_slope(track.fd_series.iter().map(|p| (p[0], p[1]))).unwrap_or(0.0);
    // A process that is gone no longer grows toward anything.
    let eta_s = proc_now.and_then(|n| eta_s(n, limit, growth_per_s));
    FdReport {
        growth_per_s,
        eta_s,
        first_emfile_s: track.first_emfile_s,
        start,
        end,
        peak,
        opened,
        closed,
        limit,
        emfile_errors: emfile,
        enfile_errors: enfile,
        proc_now,
        warning: fd_warning(end, peak, limit, emfile, enfile),
    }
}

/// The warning for a descriptor count, if any: the peak against the limit (with the count
/// now), and the failed calls.
pub fn fd_warning(
    end: u64,
    peak: u64,
    limit: Option<u64>,
    emfile: u64,
    enfile: u64,
) -> Option<FdWarning> {
    let mut parts = Vec::new();
    if let Some(l) = limit
        && l > 0
        && peak as f64 >= FD_WARN_RATIO * l as f64
    {
        parts.push(FdConcern::NearLimit {
            peak,
            limit: l,
            now: end,
        });
    }
    if emfile > 0 {
        parts.push(FdConcern::Emfile(emfile));
    }
    if enfile > 0 {
        parts.push(FdConcern::Enfile(enfile));
    }
    (!parts.is_empty()).then_some(FdWarning(parts))
}

/// Sums several processes' reports into one (the top-level `memory`): bytes and counts
/// add up, limits are the tightest, the earliest ETA wins.
pub fn merge_memory(all: &[MemoryReport]) -> Option<MemoryReport> {
    let (first, rest) = all.split_first()?;
    let mut m = first.clone();
    for r in rest {
        m.brk_start += r.brk_start;
        m.brk_end += r.brk_end;
        m.brk_growth_bytes += r.brk_growth_bytes;
        m.mmap.anon_mapped_bytes += r.mmap.anon_mapped_bytes;
        m.mmap.file_mapped_bytes += r.mmap.file_mapped_bytes;
        m.mmap.unmapped_bytes += r.mmap.unmapped_bytes;
        m.mmap.remap_grown_bytes += r.mmap.remap_grown_bytes;
        m.mmap.net_bytes += r.mmap.net_bytes;
        for (a, b) in [
            (&mut m.rss.start, &r.rss.start),
            (&mut m.rss.end, &r.rss.end),
        ] {
            a.anon_bytes += b.anon_bytes;
            a.file_bytes += b.file_bytes;
            a.shmem_bytes += b.shmem_bytes;
            a.swap_bytes += b.swap_bytes;
        }
        m.rss.start_bytes += r.rss.start_bytes;
        m.rss.end_bytes += r.rss.end_bytes;
        m.rss.peak_bytes += r.rss.peak_bytes;
        m.rss.growth_bytes_per_s += r.rss.growth_bytes_per_s;
        m.rss.growth_samples = m.rss.growth_samples.min(r.rss.growth_samples);
        m.vm_size_bytes += r.vm_size_bytes;
        m.vm_data_bytes += r.vm_data_bytes;
        m.page_faults.minor += r.page_faults.minor;
        m.page_faults.major += r.page_faults.major;
        if let Some(e) = &r.limits.eta
            && m.limits.eta.as_ref().is_none_or(|cur| e.eta_s < cur.eta_s)
        {
            m.limits.eta = Some(e.clone());
        }
    }
    Some(m)
}

pub fn merge_fds(all: &[FdReport]) -> Option<FdReport> {
    let (first, rest) = all.split_first()?;
    let mut f = first.clone();
    for r in rest {
        f.start += r.start;
        f.end += r.end;
        f.peak += r.peak;
        f.opened += r.opened;
        f.closed += r.closed;
        f.emfile_errors += r.emfile_errors;
        f.enfile_errors += r.enfile_errors;
        f.limit = match (f.limit, r.limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        f.proc_now = f.proc_now.zip(r.proc_now).map(|(a, b)| a + b);
        f.growth_per_s += r.growth_per_s;
        // The soonest any of them reaches its own limit, and the first EMFILE of any.
        f.eta_s = f.eta_s.into_iter().chain(r.eta_s).min_by(f64::total_cmp);
        f.first_emfile_s = f
            .first_emfile_s
            .into_iter()
            .chain(r.first_emfile_s)
            .min_by(f64::total_cmp);
        f.warning = match (f.warning.take(), &r.warning) {
            (Some(mut a), Some(b)) => {
                a.0.extend_from_slice(&b.0);
                Some(a)
            }
            (a, b) => a.or(b.clone()),
        };
    }
    Some(f)
}

/// One traced process's memory and descriptors, since tracing started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcMemory {
    pub memory: MemoryReport,
    pub fds: FdReport,
    /// What it is made of at the reading (None when it could not be read: gone).
    pub anatomy: Option<super::anatomy::Anatomy>,
}

/// The memory section at one moment: each traced process's reports since tracing started,
/// in slot order, and the paths of the memory cgroups named by OOM kills so far (by id).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemSample {
    pub procs: Vec<ProcMemory>,
    pub cgroups: BTreeMap<u64, String>,
    /// The anatomies of selectors' processes (a few of each selector's).
    pub members: Vec<super::anatomy::MemberAnatomy>,
}

/// The memory report of a window, from the reports since tracing started at its end
/// (`now`) and at its start (`before`; None when the window starts with the run): counts
/// are the window's, `start` readings are those at its start, the rest are `now`'s.
pub fn memory_window(now: &MemoryReport, before: Option<&MemoryReport>) -> MemoryReport {
    let Some(b) = before else {
        return now.clone();
    };
    let mut m = now.clone();
    // Where the run's heap start moved (an exec in the window), the new program's heap
    // starts at its own base.
    if now.brk_start == b.brk_start {
        m.brk_start = b.brk_end;
    }
    m.brk_growth_bytes = m.brk_end as i64 - m.brk_start as i64;
    let (n, p) = (&now.mmap, &b.mmap);
    m.mmap = MmapReport {
        anon_mapped_bytes: n.anon_mapped_bytes.saturating_sub(p.anon_mapped_bytes),
        file_mapped_bytes: n.file_mapped_bytes.saturating_sub(p.file_mapped_bytes),
        unmapped_bytes: n.unmapped_bytes.saturating_sub(p.unmapped_bytes),
        remap_grown_bytes: n.remap_grown_bytes.saturating_sub(p.remap_grown_bytes),
        net_bytes: n.net_bytes - p.net_bytes,
    };
    m.rss.start_bytes = b.rss.end_bytes;
    m.rss.start = b.rss.end;
    m.page_faults = FaultReport {
        minor: now.page_faults.minor.saturating_sub(b.page_faults.minor),
        major: now.page_faults.major.saturating_sub(b.page_faults.major),
    };
    m
}

/// The descriptor report of a window, as [`memory_window`]: `start` is the count at its
/// start, opens, closes and EMFILE/ENFILE failures are the window's.
pub fn fd_window(now: &FdReport, before: Option<&FdReport>) -> FdReport {
    let Some(b) = before else {
        return now.clone();
    };
    let emfile = now.emfile_errors.saturating_sub(b.emfile_errors);
    let enfile = now.enfile_errors.saturating_sub(b.enfile_errors);
    FdReport {
        start: b.end,
        opened: now.opened.saturating_sub(b.opened),
        closed: now.closed.saturating_sub(b.closed),
        emfile_errors: emfile,
        enfile_errors: enfile,
        warning: fd_warning(now.end, now.peak, now.limit, emfile, enfile),
        ..now.clone()
    }
}

/// The OOM kills among `events`.
pub fn oom_kills(
    events: &[RawEvent],
    t0_ns: u64,
    cgroup_path: &dyn Fn(u64) -> Option<String>,
) -> Vec<OomReport> {
    events
        .iter()
        .filter_map(|e| OomReport::from_event(e, t0_ns, cgroup_path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn reading(t_s: f64, rss_mib: u64) -> ProcReading {
        ProcReading {
            t_s,
            rss: Some(Rss {
                anon_bytes: rss_mib * MIB,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn oom_kill_events_are_reported() {
        let e = RawEvent {
            header: event::Header {
                kind: event::Kind::OomKill as u32,
                slot: 0,
                ts_ns: 2_000_000_000,
                tid: 77,
                tgid: 77,
            },
            data: EventData::OomKill(event::OomKill::example(b"test")),
        };
        let r = OomReport::from_event(&e, 1_000_000_000, &|id| {
            (id == 1234).then(|| "/a/test".to_string())
        })
        .unwrap();
        assert_eq!(
            (r.pid, r.comm.as_str(), r.traced),
            (77, "tracer-workload", true)
        );
        assert_eq!(
            (r.anon_rss_bytes, r.cgroup.as_str(), r.t_s),
            (64 << 20, "/a/test", 1.0)
        );
        let r = OomReport::from_event(&e, 0, &|_| None).unwrap();
        assert_eq!(r.cgroup, "test", "falls back to the kernel's name");
    }

    #[test]
    fn slope_is_a_least_squares_fit_not_two_points() {
        // 10 MiB/s with noise on the first and last points: two-point would say 8 MiB/s.
        let mut pts: Vec<(f64, f64)> = (0..=10).map(|i| (i as f64, 10.0 * i as f64)).collect();
        pts[0].1 += 10.0;
        pts[10].1 -= 10.0;
        let s = fit_slope(pts.iter().copied()).unwrap();
        let two_point = (pts[10].1 - pts[0].1) / 10.0;
        assert!((two_point - 8.0).abs() < 1e-9);
        assert!((s - 9.0909).abs() < 0.001, "{s}");
        assert_eq!(fit_slope([(1.0, 5.0)].into_iter()), None);
        assert_eq!(fit_slope([(1.0, 5.0), (2.0, 6.0)].into_iter()), None);
        assert_eq!(
            fit_slope([(1.0, 5.0), (1.0, 6.0), (1.0, 7.0)].into_iter()),
            None
        );
        let flat = fit_slope([(0.0, 3.0), (1.0, 3.0), (2.0, 3.0)].into_iter()).unwrap();
        assert_eq!(flat, 0.0);
    }

    #[test]
    fn eta_only_when_growing_toward_a_real_limit() {
        assert_eq!(
            eta_s(60 * MIB, Some(100 * MIB), 10.0 * MIB as f64),
            Some(4.0)
        );
        assert_eq!(eta_s(60 * MIB, Some(100 * MIB), 0.0), None);
        assert_eq!(eta_s(60 * MIB, Some(100 * MIB), -5.0), None);
        assert_eq!(eta_s(60 * MIB, None, 1.0), None);
        assert_eq!(eta_s(60 * MIB, Some(NO_LIMIT), 1.0), None);
        assert_eq!(eta_s(200 * MIB, Some(100 * MIB), 1.0), Some(0.0));
    }

    /// Descriptors counted once a second, 10 more each time, against a limit of 1024:
    /// their growth (the readings between counts repeat the count and are not samples),
    /// the time to the limit, and when EMFILE was first seen.
    #[test]
    fn descriptors_growing_toward_their_limit_say_when_it_is_reached() {
        let reading = |t_s: f64, fds: u64| ProcReading {
            t_s,
            rss: Some(Rss::default()),
            fds: Some(fds),
            nofile_limit: Some(1024),
            ..Default::default()
        };
        let mut track = MemTrack::new(false, Some(reading(0.0, 100)));
        for i in 1..=40u64 {
            // Every 0.25 s; the count changes at whole seconds only.
            let t = i as f64 * 0.25;
            track.push(reading(t, 100 + 10 * (i / 4)));
            if i == 30 {
                track.note_emfile(0);
            }
            if i == 33 {
                track.note_emfile(2);
            }
        }
        track.note_emfile(5);
        assert_eq!(track.fd_series.len(), 11, "{:?}", track.fd_series);
        let f = fd_report(&track, &KernelMem::default(), 5, 0);
        assert!((f.growth_per_s - 10.0).abs() < 1e-9, "{}", f.growth_per_s);
        assert_eq!(f.proc_now, Some(200));
        assert!((f.eta_s.unwrap() - 82.4).abs() < 1e-9, "{:?}", f.eta_s);
        assert_eq!(f.first_emfile_s, Some(8.25));
        // Flat: no time to the limit; and a process that is gone grows toward nothing.
        let flat = MemTrack::new(false, Some(reading(0.0, 5)));
        assert_eq!(fd_report(&flat, &KernelMem::default(), 0, 0).eta_s, None);
        track.push(ProcReading {
            rss: None,
            ..reading(11.0, 200)
        });
        assert_eq!(fd_report(&track, &KernelMem::default(), 5, 0).eta_s, None);
    }

    #[test]
    fn fd_warning_at_80_percent_and_on_emfile() {
        use FdConcern::*;
        assert_eq!(fd_warning(204, 204, Some(256), 0, 0), None);
        let near = |peak, limit, now| NearLimit { peak, limit, now };
        assert_eq!(
            fd_warning(205, 205, Some(256), 0, 0),
            Some(FdWarning(vec![near(205, 256, 205)]))
        );
        assert!(fd_warning(10, 10, None, 0, 0).is_none());
        assert_eq!(
            fd_warning(256, 256, Some(256), 247, 0),
            Some(FdWarning(vec![near(256, 256, 256), Emfile(247)]))
        );
        assert_eq!(
            fd_warning(3, 3, Some(1024), 0, 1),
            Some(FdWarning(vec![Enfile(1)]))
        );
        // The count fell back: the peak and the count now.
        assert_eq!(
            fd_warning(21, 1024, Some(1024), 0, 0),
            Some(FdWarning(vec![near(1024, 1024, 21)]))
        );
    }

    #[test]
    fn fds_from_baseline_and_syscalls() {
        let mut start = reading(0.0, 1);
        start.fds = Some(4);
        start.nofile_limit = Some(1024);
        let track = MemTrack::new(false, Some(start));
        let k = KernelMem {
            sys: MemSyscalls {
                fds_opened: 510,
                fds_closed: 10,
                fds_peak_net: 505,
                ..Default::default()
            },
            ..Default::default()
        };
        let f = fd_report(&track, &k, 0, 0);
        assert_eq!((f.start, f.end, f.peak, f.limit), (4, 504, 509, Some(1024)));
        assert!(f.warning.is_none());
    }

    #[test]
    fn memory_of_an_exited_process_ends_at_the_kernel_snapshot() {
        let mut start = reading(0.0, 10);
        start.brk = Some(0x1000_0000);
        start.minflt = 100;
        let mut track = MemTrack::new(false, Some(start));
        track.push(reading(1.0, 20));
        track.push(reading(2.0, 30));
        // The zombie: no memory left, fault counts final.
        let mut zombie = reading(3.0, 0);
        zombie.rss = None;
        zombie.minflt = 9000;
        track.push(zombie);
        let mut k = KernelMem {
            sys: MemSyscalls {
                brk: 0x1000_0000 + 64 * MIB,
                anon_mapped: 32 * MIB,
                unmapped: 32 * MIB,
                remap_shrunk: MIB,
                ..Default::default()
            },
            ..Default::default()
        };
        k.add_cpu_snapshot(&RssSnapshot {
            ts_ns: 5,
            anon_pages: 10240, // 40 MiB
            peak_pages: 12800, // 50 MiB
            ..Default::default()
        });
        k.add_cpu_snapshot(&RssSnapshot {
            ts_ns: 4, // older: not "now", but its peak counts
            anon_pages: 1,
            peak_pages: 1,
            ..Default::default()
        });
        let m = memory_report(&track, &k, 4096);
        assert_eq!(m.page_faults.minor, 8900, "the zombie's count");
        // Reaped before tracer read /proc: the kernel's count at the exit.
        k.add_cpu_snapshot(&RssSnapshot {
            exit_ts_ns: 9,
            exit_minflt: 9500,
            exit_majflt: 3,
            ..Default::default()
        });
        let m = memory_report(&track, &k, 4096);
        assert_eq!((m.page_faults.minor, m.page_faults.major), (9400, 3));
        assert_eq!(m.brk_growth_bytes, (64 * MIB) as i64);
        assert_eq!(m.rss.start_bytes, 10 * MIB);
        assert_eq!(m.rss.end_bytes, 40 * MIB);
        assert_eq!(m.rss.peak_bytes, 50 * MIB);
        assert_eq!(m.mmap.unmapped_bytes, 33 * MIB);
        assert_eq!(m.mmap.net_bytes, -(MIB as i64));
        assert!(m.limits.eta.is_none(), "an exited process has no ETA");
        // 10, 20, 30, 40 MiB at 0..3 s: 10 MiB/s.
        assert!((m.rss.growth_bytes_per_s - 10.0 * MIB as f64).abs() < 1.0);
    }

    #[test]
    fn heap_of_a_process_that_exec_d_starts_at_its_new_start_brk() {
        let mut start = reading(0.0, 1);
        start.brk = Some(0x5000_0000 + 10 * MIB);
        start.start_brk = Some(0x5000_0000);
        let track = MemTrack::new(false, Some(start));
        let mut k = KernelMem::default();
        k.sys.start_brk = 0x5000_0000;
        k.sys.brk = 0x5000_0000 + 12 * MIB;
        assert_eq!(
            memory_report(&track, &k, 4096).brk_growth_bytes,
            (2 * MIB) as i64
        );
        k.sys.start_brk = 0x7000_0000; // a new program
        k.sys.brk = 0x7000_0000 + MIB;
        assert_eq!(memory_report(&track, &k, 4096).brk_growth_bytes, MIB as i64);
    }

    #[test]
    fn launched_processes_start_from_an_empty_memory() {
        let mut start = reading(0.0, 25); // tracer's fork before the exec
        start.brk = Some(0x5555_0000);
        let mut track = MemTrack::new(true, Some(start));
        track.push(reading(0.5, 1)); // 0, 1, 3 MiB at 0, 0.5, 1 s: a fit of 3 MiB/s
        let mut now = reading(1.0, 3);
        now.cgroup = Some(CgroupMem {
            path: "/app".into(),
            limit_bytes: Some(103 * MIB),
            usage_bytes: 3 * MIB,
        });
        track.push(now);
        let k = KernelMem {
            sys: MemSyscalls {
                start_brk: 0x7000_0000,
                brk: 0x7000_0000 + 2 * MIB,
                ..Default::default()
            },
            ..Default::default()
        };
        let m = memory_report(&track, &k, 4096);
        assert_eq!(m.rss.start_bytes, 0);
        assert_eq!(m.rss.end_bytes, 3 * MIB);
        assert_eq!(m.brk_growth_bytes, (2 * MIB) as i64);
        // Slope of (0,0) (0.5,1) (1,3) MiB: 3 MiB/s; toward a 103 MiB limit with 3 MiB
        // used: 100/3 s.
        assert!((m.rss.growth_bytes_per_s - 3.0 * MIB as f64).abs() < 1.0);
        let eta = m.limits.eta.unwrap();
        assert_eq!(eta.limit, "cgroup");
        assert!((eta.eta_s - 100.0 / 3.0).abs() < 1e-6, "{}", eta.eta_s);
    }

    #[test]
    fn series_stays_bounded() {
        let mut t = MemTrack::new(false, None);
        for i in 0..(MAX_SERIES + 10) {
            t.push(reading(i as f64, 1));
        }
        assert!(t.series.len() <= MAX_SERIES);
        assert!(t.series.len() > MAX_SERIES / 2);
    }

    #[test]
    fn launched_fds_start_after_the_exec() {
        // 26 descriptors before the exec, 21 of them close-on-exec; the kernel counted the
        // seed (21) as opened, the exec's 21 closes, then 10 opens and 1 close.
        let start = ProcReading {
            fds: Some(26),
            ..Default::default()
        };
        let mut track = MemTrack::new(true, Some(start));
        track.fd_seed = 21;
        let k = KernelMem {
            sys: MemSyscalls {
                fds_opened: 21 + 10,
                fds_closed: 21 + 1,
                fds_peak_net: 10,
                ..Default::default()
            },
            ..Default::default()
        };
        let f = fd_report(&track, &k, 0, 0);
        assert_eq!(
            (f.start, f.end, f.peak, f.opened, f.closed),
            (5, 14, 15, 10, 1)
        );
    }

    /// The run's reports at three readings (the last one ends the run), of a process that
    /// grows its heap, maps and unmaps, faults, and opens descriptors until EMFILE.
    fn three_readings() -> [ProcMemory; 3] {
        let mut start = reading(0.0, 10);
        start.brk = Some(0x1000_0000);
        start.minflt = 100;
        start.fds = Some(4);
        start.nofile_limit = Some(64);
        let mut track = MemTrack::new(false, Some(start));
        let mut k = KernelMem::default();
        let mut out = Vec::new();
        for (i, (rss, minflt, opened, closed, emfile)) in [
            (20, 300, 10, 2, 0),
            (15, 330, 60, 2, 7),
            (25, 400, 61, 50, 9),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = reading(i as f64 + 1.0, rss);
            r.minflt = minflt;
            r.vm_size = (rss + 100) * MIB;
            r.nofile_limit = Some(64);
            track.push(r);
            k.sys.brk = 0x1000_0000 + (i as u64 + 1) * MIB;
            k.sys.anon_mapped += 8 * MIB;
            k.sys.unmapped += (i as u64) * MIB;
            k.sys.fds_opened = opened;
            k.sys.fds_closed = closed;
            k.sys.fds_peak_net = k.sys.fds_peak_net.max(opened - closed);
            out.push(ProcMemory {
                memory: memory_report(&track, &k, 4096),
                fds: fd_report(&track, &k, emfile, 0),
                anatomy: None,
            });
        }
        out.try_into().unwrap()
    }

    /// The three readings, and the windows they end (the first starting with the run).
    fn three_windows() -> ([ProcMemory; 3], Vec<ProcMemory>) {
        let run = three_readings();
        let w = (0..3usize)
            .map(|i| {
                let before = i.checked_sub(1).map(|p| &run[p]);
                ProcMemory {
                    memory: memory_window(&run[i].memory, before.map(|b| &b.memory)),
                    fds: fd_window(&run[i].fds, before.map(|b| &b.fds)),
                    anatomy: None,
                }
            })
            .collect();
        (run, w)
    }

    #[test]
    fn memory_windows_tile_the_run() {
        let (run, w) = three_windows();
        let w: Vec<&MemoryReport> = w.iter().map(|p| &p.memory).collect();
        let end = &run[2].memory;
        // Counts of each window add up to the run's.
        let sum = |f: &dyn Fn(&MemoryReport) -> i64| w.iter().map(|m| f(m)).sum::<i64>();
        assert_eq!(sum(&|m| m.mmap.anon_mapped_bytes as i64), (24 * MIB) as i64);
        assert_eq!(sum(&|m| m.mmap.unmapped_bytes as i64), (3 * MIB) as i64);
        assert_eq!(sum(&|m| m.mmap.net_bytes), end.mmap.net_bytes);
        assert_eq!(sum(&|m| m.page_faults.minor as i64), 300);
        assert_eq!(end.page_faults.minor, 300);
        assert_eq!(sum(&|m| m.brk_growth_bytes), end.brk_growth_bytes);
        let anon: Vec<u64> = w.iter().map(|m| m.mmap.anon_mapped_bytes).collect();
        assert_eq!(anon, [8 * MIB, 8 * MIB, 8 * MIB]);
        // Readings at the bounds: each window starts where the one before ended.
        assert_eq!(w[0].rss.start_bytes, 10 * MIB, "the run's start");
        assert_eq!(w[0].brk_start, 0x1000_0000);
        for i in 1..3 {
            assert_eq!(w[i].rss.start_bytes, w[i - 1].rss.end_bytes);
            assert_eq!(w[i].rss.start, w[i - 1].rss.end);
            assert_eq!(w[i].brk_start, w[i - 1].brk_end);
        }
        assert_eq!(
            [w[1].rss.start_bytes, w[1].rss.end_bytes],
            [20 * MIB, 15 * MIB]
        );
        // Instants are the end's; the peak and the fit are the run's so far.
        assert_eq!(w[1].vm_size_bytes, 115 * MIB);
        assert_eq!(w[1].rss.peak_bytes, 20 * MIB);
        assert_eq!(
            w[1].rss.growth_bytes_per_s,
            run[1].memory.rss.growth_bytes_per_s
        );
        // The final report is the run's own.
        assert_eq!(memory_window(end, None), *end);
    }

    #[test]
    fn heap_of_a_program_exec_d_in_the_window_starts_at_its_base() {
        let run = three_readings();
        let mut now = run[2].memory.clone();
        now.brk_start = 0x7000_0000;
        now.brk_end = 0x7000_0000 + MIB;
        let w = memory_window(&now, Some(&run[1].memory));
        assert_eq!((w.brk_start, w.brk_growth_bytes), (0x7000_0000, MIB as i64));
    }

    #[test]
    fn fd_windows_tile_the_run() {
        let (run, w) = three_windows();
        let w: Vec<&FdReport> = w.iter().map(|p| &p.fds).collect();
        let end = &run[2].fds;
        assert_eq!((end.start, end.end, end.peak), (4, 15, 62));
        let io: Vec<(u64, u64, u64, u64)> = w
            .iter()
            .map(|f| (f.start, f.opened, f.closed, f.end))
            .collect();
        assert_eq!(io, [(4, 10, 2, 12), (12, 50, 0, 62), (62, 1, 48, 15)]);
        for f in &w {
            assert_eq!(f.start + f.opened - f.closed, f.end);
        }
        // The peak is the run's so far (the kernel keeps no peak per window).
        let peaks: Vec<u64> = w.iter().map(|f| f.peak).collect();
        assert_eq!(peaks, [12, 62, 62]);
        let emfile: Vec<u64> = w.iter().map(|f| f.emfile_errors).collect();
        assert_eq!(emfile, [0, 7, 2]);
        assert_eq!(emfile.iter().sum::<u64>(), end.emfile_errors);
        // The warning says the window's failures, and the run's peak against the limit.
        assert_eq!(w[0].warning, None);
        assert_eq!(
            w[2].warning,
            Some(FdWarning(vec![
                FdConcern::NearLimit {
                    peak: 62,
                    limit: 64,
                    now: 15
                },
                FdConcern::Emfile(2)
            ]))
        );
        assert_eq!(fd_window(end, None), *end);
    }

    #[test]
    fn merged_fds_take_the_tightest_limit() {
        let a = FdReport {
            start: 3,
            end: 5,
            limit: Some(1024),
            ..Default::default()
        };
        let b = FdReport {
            start: 4,
            end: 4,
            limit: Some(256),
            emfile_errors: 2,
            ..Default::default()
        };
        let m = merge_fds(&[a, b]).unwrap();
        assert_eq!(
            (m.start, m.end, m.limit, m.emfile_errors),
            (7, 9, Some(256), 2)
        );
    }
}
