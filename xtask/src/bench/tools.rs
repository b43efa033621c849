//! The configurations compared (tracer's modes and the peers), their command lines, and
//! the parsers of what each prints: dd's and perf bench's own times, tracer's final JSON
//! object, `strace -c` and `perf trace -s` summaries, and bpftrace's maps.
//! The parsers are pure and unit-tested on real output.
use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, anyhow, bail};

/// Syscall name -> calls.
pub type Counts = BTreeMap<String, u64>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Config {
    Baseline,
    Floor,
    All,
    /// All sections with `--exact-latency`: every syscall timed.
    AllExact,
    Syscalls,
    Strace,
    PerfTrace,
    BpfCount,
    BpfLatency,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    Strace,
    Perf,
    Bpftrace,
}

impl Config {
    pub const ALL: [Config; 9] = [
        Config::Baseline,
        Config::Floor,
        Config::All,
        Config::AllExact,
        Config::Syscalls,
        Config::Strace,
        Config::PerfTrace,
        Config::BpfCount,
        Config::BpfLatency,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Config::Baseline => "baseline (no tracer)",
            Config::Floor => "floor (empty programs, same hooks)",
            Config::All => "tracer, all sections",
            Config::AllExact => "tracer, all sections, --exact-latency",
            Config::Syscalls => "tracer --sections syscalls",
            Config::Strace => "strace -f -c",
            Config::PerfTrace => "perf trace -s",
            Config::BpfCount => "bpftrace, count by syscall nr",
            Config::BpfLatency => "bpftrace, latency hist by syscall",
        }
    }

    pub fn is_tracer(self) -> bool {
        matches!(
            self,
            Config::Floor | Config::All | Config::AllExact | Config::Syscalls
        )
    }

    pub fn peer(self) -> Option<Peer> {
        match self {
            Config::Strace => Some(Peer::Strace),
            Config::PerfTrace => Some(Peer::Perf),
            Config::BpfCount | Config::BpfLatency => Some(Peer::Bpftrace),
            _ => None,
        }
    }

    /// Tools that may load BPF programs (whose run time is then read).
    pub fn loads_bpf(self) -> bool {
        !matches!(self, Config::Baseline | Config::Strace)
    }
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::Strace => "strace",
            Peer::Perf => "perf",
            Peer::Bpftrace => "bpftrace",
        }
    }

    /// Debian's package.
    pub fn package(self) -> &'static str {
        match self {
            Peer::Strace => "strace",
            Peer::Perf => "linux-perf",
            Peer::Bpftrace => "bpftrace",
        }
    }

    pub fn version_args(self) -> &'static [&'static str] {
        match self {
            Peer::Strace => &["-V"],
            Peer::Perf | Peer::Bpftrace => &["--version"],
        }
    }
}

/// Absolute paths of the programs run (bpftrace's `-c` wants an absolute path).
pub struct Bins {
    pub tracer: PathBuf,
    pub workload: PathBuf,
    pub dd: PathBuf,
    pub taskset: PathBuf,
    pub perf: PathBuf,
}

pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

/// The bpftrace filter for the traced process: bpftrace's own child, or a pid.
fn bpftrace_program(cfg: Config, filter: &str) -> String {
    match cfg {
        Config::BpfCount => {
            format!(
                "tracepoint:raw_syscalls:sys_enter /pid == {filter}/ {{ @[args->id] = count(); }}"
            )
        }
        _ => format!(
            "tracepoint:raw_syscalls:sys_enter /pid == {filter}/ {{ @start[tid] = nsecs; @nr[tid] = args->id; }} \
             tracepoint:raw_syscalls:sys_exit /pid == {filter} && @start[tid]/ \
             {{ @lat[@nr[tid]] = hist(nsecs - @start[tid]); delete(@start[tid]); delete(@nr[tid]); }}"
        ),
    }
}

/// tracer's own options under `cfg` (one of its real configurations), JSON into `out`.
fn tracer_argv(cfg: Config, bins: &Bins, out: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![bins.tracer.clone().into()];
    v.extend(os(&["--output", "json", "-o"]));
    v.push(out.into());
    match cfg {
        Config::AllExact => v.push("--exact-latency".into()),
        Config::Syscalls => v.extend(os(&["--sections", "syscalls"])),
        _ => {}
    }
    v
}

/// The command line that runs `workload` under `cfg`, from its start (tracer's launch
/// mode, or the peer's own way of starting a command). `out` receives the tool's report.
pub fn launch_argv(cfg: Config, bins: &Bins, workload: &[OsString], out: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = Vec::new();
    match cfg {
        Config::Baseline => {}
        Config::Floor => {
            v.push(bins.tracer.clone().into());
            v.extend(os(&["--bench-floor", "--"]));
        }
        Config::All | Config::AllExact | Config::Syscalls => {
            v = tracer_argv(cfg, bins, out);
            if cfg != Config::Syscalls {
                // Like strace -f: perf bench's forked child is traced too.
                v.push("--follow".into());
            }
            v.push("--".into());
        }
        Config::Strace => {
            v.extend(os(&["strace", "-f", "-c", "-o"]));
            v.push(out.into());
        }
        Config::PerfTrace => {
            v.extend(os(&["perf", "trace", "-s", "-o"]));
            v.push(out.into());
            v.push("--".into());
        }
        Config::BpfCount | Config::BpfLatency => {
            let cmd: Vec<String> = workload
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            v.extend(os(&[
                "bpftrace",
                "-e",
                &bpftrace_program(cfg, "cpid"),
                "-c",
            ]));
            v.push(cmd.join(" ").into());
            return v;
        }
    }
    v.extend(workload.iter().cloned());
    v
}

/// The command line that watches the running process `pid` under `cfg` (not Baseline).
pub fn attach_argv(cfg: Config, bins: &Bins, pid: u32, out: &Path) -> Vec<OsString> {
    let pid_s = pid.to_string();
    let mut v: Vec<OsString> = Vec::new();
    match cfg {
        Config::Baseline => {}
        Config::Floor => {
            v.push(bins.tracer.clone().into());
            v.extend(os(&["--bench-floor", "--pid", &pid_s]));
        }
        Config::All | Config::AllExact | Config::Syscalls => {
            v = tracer_argv(cfg, bins, out);
            v.extend(os(&["--pid", &pid_s]));
        }
        Config::Strace => {
            v.extend(os(&["strace", "-f", "-c", "-o"]));
            v.push(out.into());
            v.extend(os(&["-p", &pid_s]));
        }
        Config::PerfTrace => {
            v.extend(os(&["perf", "trace", "-s", "-o"]));
            v.push(out.into());
            v.extend(os(&["-p", &pid_s]));
        }
        Config::BpfCount | Config::BpfLatency => {
            v.extend(os(&["bpftrace", "-e", &bpftrace_program(cfg, &pid_s)]));
        }
    }
    v
}

/// dd's own elapsed time: "1000000 bytes (1.0 MB, 977 KiB) copied, 0.3532 s, 2.8 MB/s".
pub fn dd_secs(text: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.split("copied, ").nth(1)?;
        let (num, unit) = rest.split_once(' ')?;
        unit.starts_with("s").then(|| num.parse().ok())?
    })
}

/// perf bench's "       2.909760 usecs/op".
pub fn perf_bench_usecs_per_op(text: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let l = l.trim();
        l.strip_suffix("usecs/op")?.trim().parse().ok()
    })
}

/// tracer's final JSON object (the last line of its NDJSON): lost events and calls per
/// syscall name.
pub fn tracer_final(json: &str) -> Result<(u64, Counts)> {
    let last = json
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| anyhow!("tracer wrote no report"))?;
    let v: serde_json::Value = serde_json::from_str(last).context("tracer's report is not JSON")?;
    if v["type"] != "final" {
        bail!("tracer's last report is not the final one");
    }
    let lost = v["lost_events"]
        .as_u64()
        .ok_or_else(|| anyhow!("no lost_events in tracer's report"))?;
    let mut counts = Counts::new();
    let mut add = |rows: &serde_json::Value| {
        for r in rows.as_array().into_iter().flatten() {
            if let (Some(name), Some(calls)) = (r["name"].as_str(), r["calls"].as_u64()) {
                *counts.entry(name.to_string()).or_default() += calls;
            }
        }
    };
    if v["syscalls"].is_array() {
        add(&v["syscalls"]);
    } else {
        for p in v["processes"].as_array().into_iter().flatten() {
            add(&p["syscalls"]);
        }
    }
    Ok((lost, counts))
}

/// `strace -c` table: "% time seconds usecs/call calls [errors] syscall" rows.
pub fn strace_summary(text: &str) -> Counts {
    let mut counts = Counts::new();
    for l in text.lines() {
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.len() < 5 || t[0].parse::<f64>().is_err() {
            continue;
        }
        let name = t[t.len() - 1];
        if name == "total" {
            continue;
        }
        if let Ok(calls) = t[3].parse::<u64>() {
            *counts.entry(name.to_string()).or_default() += calls;
        }
    }
    counts
}

/// `perf trace -s` summary: one table per thread; rows are "name calls errors total ...".
pub fn perf_trace_summary(text: &str) -> Counts {
    let mut counts = Counts::new();
    for l in text.lines() {
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.len() < 8 || !t[0].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        if let (Ok(calls), Ok(_errors), Ok(_total)) = (
            t[1].parse::<u64>(),
            t[2].parse::<u64>(),
            t[3].parse::<f64>(),
        ) {
            *counts.entry(t[0].to_string()).or_default() += calls;
        }
    }
    counts
}

fn syscall_name(nr: usize) -> String {
    syscalls::Sysno::new(nr).map_or_else(|| format!("syscall_{nr}"), |s| s.name().to_string())
}

/// bpftrace's count map, "@[0]: 1000003", by syscall name.
pub fn bpftrace_counts(text: &str) -> Counts {
    let mut counts = Counts::new();
    for l in text.lines() {
        let Some(rest) = l.trim().strip_prefix("@[") else {
            continue;
        };
        let Some((nr, value)) = rest.split_once("]:") else {
            continue;
        };
        if let (Ok(nr), Ok(n)) = (nr.parse::<usize>(), value.trim().parse::<u64>()) {
            *counts.entry(syscall_name(nr)).or_default() += n;
        }
    }
    counts
}

/// The number of samples in each of bpftrace's `@lat[NR]` histograms, by syscall name.
pub fn bpftrace_hist_counts(text: &str) -> Counts {
    let mut counts = Counts::new();
    let mut current: Option<String> = None;
    for l in text.lines() {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("@lat[") {
            current = rest
                .split_once("]:")
                .and_then(|(nr, _)| nr.parse::<usize>().ok())
                .map(syscall_name);
        } else if l.starts_with('@') || l.is_empty() {
            current = None;
        } else if let Some(name) = &current
            && (l.starts_with('[') || l.starts_with('('))
            && let Some((_, after)) = l.split_once(')')
            && let Some(n) = after
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        {
            *counts.entry(name.clone()).or_default() += n;
        }
    }
    counts
}

/// Exact per-syscall counts of a workload as a function of its size n: a + b*n, fitted on
/// two `strace -f -c` runs of small sizes and checked on a third.
#[derive(Clone, Debug)]
pub struct Model {
    per: BTreeMap<String, (f64, f64)>,
}

impl Model {
    pub fn fit(n1: u64, c1: &Counts, n2: u64, c2: &Counts) -> Model {
        let mut per = BTreeMap::new();
        for name in c1.keys().chain(c2.keys()) {
            let y1 = c1.get(name).copied().unwrap_or(0) as f64;
            let y2 = c2.get(name).copied().unwrap_or(0) as f64;
            let b = (y2 - y1) / (n2 - n1) as f64;
            per.insert(name.clone(), (y1 - b * n1 as f64, b));
        }
        Model { per }
    }

    pub fn expected(&self, name: &str, n: u64) -> u64 {
        self.per
            .get(name)
            .map_or(0, |(a, b)| (a + b * n as f64).round().max(0.0) as u64)
    }

    pub fn total(&self, n: u64) -> u64 {
        self.per.keys().map(|k| self.expected(k, n)).sum()
    }

    /// The syscalls among `names` whose observed count differs from the prediction.
    pub fn mismatches(&self, names: &[&str], counts: &Counts, n: u64) -> Vec<String> {
        names
            .iter()
            .filter_map(|&name| {
                let (want, got) = (
                    self.expected(name, n),
                    counts.get(name).copied().unwrap_or(0),
                );
                (want != got).then(|| format!("{name} {got} of {want}"))
            })
            .collect()
    }
}

/// A count check of one run.
#[derive(Clone, Debug)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

pub fn check(model: &Model, names: &[&str], counts: &Counts, n: u64) -> Check {
    let bad = model.mismatches(names, counts, n);
    if bad.is_empty() {
        let detail = names
            .iter()
            .map(|&name| format!("{name} {}", counts.get(name).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ");
        Check { ok: true, detail }
    } else {
        Check {
            ok: false,
            detail: bad.join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dd_time_is_read_from_its_summary_line() {
        let t = "tracer: tracing 19681 (dd); Ctrl-C to stop\n1000000+0 records in\n\
                 1000000+0 records out\n1000000 bytes (1.0 MB, 977 KiB) copied, 0.422846 s, 2.4 MB/s\n";
        assert_eq!(dd_secs(t), Some(0.422846));
        assert_eq!(dd_secs("nothing"), None);
    }

    #[test]
    fn perf_bench_time_per_op() {
        let t = "# Running 'sched/pipe' benchmark:\n# Executed 100000 pipe operations between two processes\n\n     Total time: 0.290 [sec]\n\n       2.909760 usecs/op\n         343670 ops/sec\n";
        assert_eq!(perf_bench_usecs_per_op(t), Some(2.90976));
    }

    #[test]
    fn tracer_final_object() {
        let t = r#"{"type":"interval","lost_events":0,"syscalls":[]}
{"type":"final","lost_events":2,"syscalls":[{"name":"read","calls":1000003},{"name":"write","calls":1000003}]}
"#;
        let (lost, c) = tracer_final(t).unwrap();
        assert_eq!(lost, 2);
        assert_eq!(c["read"], 1000003);
        assert_eq!(c["write"], 1000003);
        assert!(tracer_final("").is_err());
    }

    #[test]
    fn strace_summary_rows_with_and_without_errors() {
        let t = "% time     seconds  usecs/call     calls    errors syscall\n\
                 ------ ----------- ----------- --------- --------- ----------------\n \
                 50.22    0.002565           2      1003           read\n \
                 48.83    0.002494           2      1003           write\n  \
                 0.55    0.000028           0        35        16 openat\n\
                 ------ ----------- ----------- --------- --------- ----------------\n\
                 100.00    0.005108           2      2134        17 total\n";
        let c = strace_summary(t);
        assert_eq!(c["read"], 1003);
        assert_eq!(c["write"], 1003);
        assert_eq!(c["openat"], 35);
        assert!(!c.contains_key("total"));
    }

    #[test]
    fn perf_trace_summary_sums_threads() {
        let t = "\n Summary of events:\n\n sched-pipe (24002), 41028 events, 50.6%\n\n   \
                 syscall            calls  errors  total       min       avg       max       stddev\n   \
                                    (msec)    (msec)    (msec)    (msec)        (%)\n   \
                 --------------- --------  ------ -------- --------- --------- ---------     ------\n   \
                 read               10039      0   232.958     0.002     0.023     0.101      0.50%\n   \
                 write              10005      0    25.522     0.002     0.003     0.026      0.34%\n\n \
                 sched-pipe (24003), 40004 events, 49.3%\n   \
                 read               10000      0   233.142     0.002     0.023     0.261      0.51%\n";
        let c = perf_trace_summary(t);
        assert_eq!(c["read"], 20039);
        assert_eq!(c["write"], 10005);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn bpftrace_maps() {
        let t = "Attaching 1 probe...\n\n\n@[334]: 1\n@[0]: 1000003\n@[1]: 1000003\n";
        let c = bpftrace_counts(t);
        assert_eq!(c["read"], 1000003);
        assert_eq!(c["write"], 1000003);
        assert_eq!(c["rseq"], 1);
        let h = "@lat[0]: \n[64, 128)         999990 |@@@@@|\n[128, 256)            13 |  |\n\n\
                 @lat[33]: \n[512, 1K)              1 |@@@|\n[1K, 2K)               1 |@@@|\n\n\
                 @start[1234]: 99\n";
        let c = bpftrace_hist_counts(h);
        assert_eq!(c["read"], 1000003);
        assert_eq!(c["dup2"], 2);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn model_predicts_linear_counts() {
        let c = |r, w| Counts::from([("read".into(), r), ("write".into(), w)]);
        let m = Model::fit(1000, &c(1003, 1003), 2000, &c(2003, 2003));
        assert_eq!(m.expected("read", 1_000_000), 1_000_003);
        assert_eq!(m.total(1_000_000), 2_000_006);
        assert!(check(&m, &["read", "write"], &c(1_000_003, 1_000_003), 1_000_000).ok);
        let bad = check(&m, &["read", "write"], &c(1_000_003, 999_000), 1_000_000);
        assert!(!bad.ok);
        assert_eq!(bad.detail, "write 999000 of 1000003");
    }
}
