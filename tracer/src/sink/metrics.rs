//! The metrics sinks' state (issue 13): the run's counters, gauges and histograms per
//! service, summed from the interval reports the engine hands it, under a hard limit on
//! series, and listed as families ([`Metrics::families`]) for the exporters:
//! `openmetrics.rs` (the text format, for Prometheus), `promproto.rs` (Prometheus's protobuf
//! format, with native histograms) and `otlp.rs` (OpenTelemetry). Pure:
//! no I/O here; `serve.rs` answers the scrapes, `own.rs` measures tracer itself.
//!
//! Every family is prefixed `tracer_`, in base units (seconds, bytes). Labels are few and
//! bounded: `service` (from the selector, or `--label`), `comm` (the process name, where one
//! name is the target's), `syscall`, `abi`, `errno`, and `pid` only with `--metrics-pid`. No
//! syscall argument, path or address is ever a label.
use std::collections::BTreeMap;

use tracer_common::hist;

use crate::{
    model::{
        ProcessReport, Report, SyscallRow, blocked::BlockedBy, events::SlotLife, procs::ProcEntry,
    },
    render::term::printable,
};

/// Series at most, unless `--max-series` says otherwise.
pub const DEFAULT_SERIES_LIMIT: usize = 10_000;

/// How long the series of an ended process stay (with `--metrics-pid`), in ns: long enough
/// for a scrape to see its final counts.
const ENDED_KEPT_NS: u64 = 300_000_000_000;

/// The classic histogram bounds are the powers of two from 2^MIN_LOG2 ns (128 ns) to
/// 2^MAX_LOG2 ns (34 s). Each is a boundary of the kernel's log-linear buckets, so a classic
/// bucket's count is an exact sum of kernel buckets, not an interpolation.
const MIN_LOG2: usize = 7;
const MAX_LOG2: usize = 35;
/// Powers of two a value can fall in: slot `p` counts values in [2^(p-1), 2^p) ns (slot 0:
/// 0 ns); the kernel's last bucket, open-ended, is in the last slot.
const SLOTS: usize = hist::MAX_MSB as usize + 2;
/// Series of one histogram: its classic buckets, `+Inf`, `_sum` and `_count`.
const HIST_SERIES: usize = MAX_LOG2 - MIN_LOG2 + 1 + 3;
/// Series of `tracer_blocked_seconds` per service (one per cause).
const BLOCK_CAUSES: usize = BlockedBy::LABELS.len();

/// A distribution in powers of two, summed over the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Hist {
    slots: [u64; SLOTS],
    sum_ns: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            slots: [0; SLOTS],
            sum_ns: 0,
        }
    }
}

impl Hist {
    /// Adds a window's kernel histogram (`hist::BUCKETS` counts) and its total.
    pub fn add(&mut self, buckets: &[u64], sum_ns: u64) {
        for (b, &n) in buckets.iter().enumerate().filter(|(_, n)| **n > 0) {
            let low = hist::lower_bound(b);
            let p = if low == 0 {
                0
            } else {
                hist::msb(low) as usize + 1
            };
            self.slots[p.min(SLOTS - 1)] += n;
        }
        self.sum_ns += sum_ns;
    }

    pub fn sum_seconds(&self) -> f64 {
        ns_to_s(self.sum_ns)
    }

    pub fn count(&self) -> u64 {
        self.slots.iter().sum()
    }

    /// (upper bound in seconds, count) of each classic bucket, not cumulative; the last
    /// bound is infinite, written `+Inf`.
    pub fn classic(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::with_capacity(MAX_LOG2 - MIN_LOG2 + 2);
        out.push((ns_to_s(1 << MIN_LOG2), self.slots[..=MIN_LOG2].iter().sum()));
        for p in MIN_LOG2 + 1..=MAX_LOG2 {
            out.push((ns_to_s(1 << p), self.slots[p]));
        }
        out.push((f64::INFINITY, self.slots[MAX_LOG2 + 1..].iter().sum()));
        out
    }

    /// The same counts as a Prometheus native histogram of schema 0, whose bucket `i`
    /// covers (2^(i-1), 2^i] seconds. A second is not a power of two of nanoseconds, so
    /// the slots cannot land on those bounds: slot `p` ([2^(p-1), 2^p) ns) is bucket
    /// `p - NATIVE_SHIFT`, the one that holds most of it (its lower 86%). Bucket `i` thus
    /// holds the values in [2^(i+29), 2^(i+30)) ns = [0.537, 1.074) × 2^i s: a value in
    /// [2^i, 1.074 × 2^i) s is counted one bucket low, no value is counted high. Slot 0
    /// (0 ns) is the zero bucket; the open last slot (2^39 ns = 550 s and more) is the
    /// bucket (512, 1024] s.
    pub fn native(&self) -> Native {
        let mut n = Native {
            zero_count: self.slots[0],
            ..Native::default()
        };
        let mut last: Option<(i32, u64)> = None;
        for (p, &count) in self.slots.iter().enumerate().skip(1) {
            if count == 0 {
                continue;
            }
            let i = p as i32 - NATIVE_SHIFT;
            match (last, n.spans.last_mut()) {
                (Some((j, _)), Some(span)) if j + 1 == i => span.1 += 1,
                (Some((j, _)), _) => n.spans.push((i - j - 1, 1)),
                (None, _) => n.spans.push((i, 1)),
            }
            n.deltas
                .push(count as i64 - last.map_or(0, |(_, c)| c as i64));
            last = Some((i, count));
        }
        if n.spans.is_empty() {
            // A native histogram without buckets (the zero bucket aside) has one empty
            // span, or a scraper could take it for a classic one.
            n.spans.push((0, 0));
        }
        n
    }
}

/// Slot `p` of a [`Hist`] is native bucket `p - NATIVE_SHIFT` (2^30 ns is 1.074 s).
const NATIVE_SHIFT: i32 = 30;

/// The zero bucket's bound: [-2^-30, 2^-30] s holds the 0 ns slot only (bucket -29, the
/// lowest any other slot is in, starts above it).
pub const NATIVE_ZERO_THRESHOLD: f64 = 1.0 / (1u64 << 30) as f64;

/// A native histogram's buckets: the zero bucket's count, then the populated positive
/// buckets as spans (offset from the previous span's end, or the first span's bucket
/// index; length) and their counts as deltas, each from the bucket before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Native {
    pub zero_count: u64,
    pub spans: Vec<(i32, u32)>,
    pub deltas: Vec<i64>,
}

fn ns_to_s(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The labels of a service's series.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Service {
    pub service: String,
    /// The process name, where the target has one (a `--pid` or launched target, a
    /// `--comm` selector); a cgroup's or an executable's processes may have many.
    pub comm: Option<String>,
}

impl Service {
    /// The service a target's entry is counted under: `label` if given, else the
    /// selector's name (a `--comm` NAME, the last part of a `--cgroup` or `--exe` path),
    /// else the process name.
    pub fn of(p: &ProcessReport, label: Option<&str>) -> Self {
        let (derived, comm) = match p.selector.as_deref().and_then(|s| s.split_once(':')) {
            Some(("comm", name)) => (name.to_string(), Some(name.to_string())),
            Some((_, path)) => {
                let base = path
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or(path);
                (base.to_string(), None)
            }
            None => (p.comm.clone(), Some(p.comm.clone())),
        };
        Service {
            service: label.map_or(derived, str::to_string),
            comm,
        }
    }

    fn labels(&self) -> Vec<(&'static str, String)> {
        let mut l = vec![("service", value(&self.service))];
        if let Some(c) = &self.comm {
            l.push(("comm", value(c)));
        }
        l
    }
}

/// A label value as it may be written: control characters and backslashes escaped as the
/// text report escapes them (a name is another user's input); prometheus-client then
/// escapes quotes, backslashes and line breaks as the exposition format wants.
fn value(s: &str) -> String {
    printable(s).into_owned()
}

#[derive(Clone, Debug, Default, PartialEq)]
struct SyscallSeries {
    calls: u64,
    errors: u64,
    errnos: BTreeMap<String, u64>,
    latency: Hist,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct SchedSeries {
    voluntary: u64,
    involuntary: u64,
    on_cpu_ns: u64,
    runqueue_ns: u64,
    blocked_ns: u64,
    /// Blocked time by cause, in `BlockedBy::labelled` order.
    blocked_by: [u64; BLOCK_CAUSES],
    runqueue: Hist,
}

/// The memory section's figures: gauges from the last reading, faults summed.
#[derive(Clone, Debug, Default, PartialEq)]
struct MemorySeries {
    rss_anon: u64,
    rss_file: u64,
    rss_shmem: u64,
    minor_faults: u64,
    major_faults: u64,
    fds: u64,
    fd_limit: Option<u64>,
    limits: Vec<(&'static str, u64)>,
    /// Zombie children, from the anatomy (a `--pid` target's or a launched command's).
    zombies: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct ServiceSeries {
    syscalls: BTreeMap<(String, &'static str), SyscallSeries>,
    sched: Option<SchedSeries>,
    memory: Option<MemorySeries>,
    life: SlotLife,
    /// Crash signals by signal name.
    crashes: BTreeMap<String, u64>,
    /// Anomalies begun, by (kind, syscall).
    anomalies: BTreeMap<(&'static str, String), u64>,
    /// Its event loops' iterations, summed over its loop threads.
    loops: Option<LoopSeries>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct LoopSeries {
    stalls: u64,
    /// The iterations' busy time (its count is the iterations').
    iterations: Hist,
}

/// A process's own series (`--metrics-pid`).
#[derive(Clone, Debug, Default, PartialEq)]
struct ProcSeries {
    calls: u64,
    errors: u64,
    /// When it was seen ended (monotonic ns), for reclaiming its series.
    ended_ns: Option<u64>,
}

/// tracer's own cost, measured by the sink before each update (see `own.rs`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnCost {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    /// The memory the kernel charges for tracer's maps (their fdinfo `memlock`).
    pub map_bytes: u64,
    /// Per program: (name, run time in ns, runs), when `--bpf-stats` holds statistics on.
    pub programs: Vec<(String, u64, u64)>,
}

/// What `--metrics-*` options say.
#[derive(Clone, Debug)]
pub struct Options {
    pub series_limit: usize,
    pub label: Option<String>,
    pub pid_label: bool,
}

impl From<&crate::cli::Cli> for Options {
    fn from(cli: &crate::cli::Cli) -> Self {
        Options {
            series_limit: cli.max_series,
            label: cli.label.clone(),
            pid_label: cli.metrics_pid,
        }
    }
}

/// The run's metrics, cumulative since tracing started.
#[derive(Clone, Debug)]
pub struct Metrics {
    opts: Options,
    /// Series admitted so far, against `opts.series_limit`.
    series: usize,
    /// Updates of series refused because the limit was reached.
    overflow: u64,
    services: BTreeMap<Service, ServiceSeries>,
    /// By (service, name, pid); the processes beyond those listed under no service, pid
    /// `other`.
    procs: BTreeMap<(Option<Service>, String, String), ProcSeries>,
    lost: BTreeMap<String, u64>,
    own: OwnCost,
    /// With `--otlp`: pushes that failed so far.
    push_failures: Option<u64>,
    /// Reports taken, and the monotonic end of the last.
    updates: u64,
    last_ns: u64,
}

impl Metrics {
    pub fn new(opts: Options) -> Self {
        Metrics {
            opts,
            series: 0,
            overflow: 0,
            services: BTreeMap::new(),
            procs: BTreeMap::new(),
            lost: lost_causes().into_iter().map(|c| (c, 0)).collect(),
            own: OwnCost::default(),
            push_failures: None,
            updates: 0,
            last_ns: 0,
        }
    }

    pub fn set_own(&mut self, own: OwnCost) {
        self.own = own;
    }

    #[cfg(feature = "otlp")]
    pub fn set_push_failures(&mut self, n: u64) {
        self.push_failures = Some(n);
    }

    /// Admits `cost` more series if the limit allows; a refusal is counted.
    fn admit(&mut self, cost: usize) -> bool {
        if self.series + cost > self.opts.series_limit {
            self.overflow += 1;
            return false;
        }
        self.series += cost;
        true
    }

    /// Adds an interval report (each window's counts once: the engine's interval reports
    /// tile the run). A final report is not added: its counts are the whole run's.
    pub fn add(&mut self, r: &Report) {
        self.updates += 1;
        self.last_ns = r.end_mono_ns;
        if let Ok(serde_json::Value::Object(drops)) = serde_json::to_value(r.drops) {
            for (cause, n) in drops {
                *self.lost.entry(cause).or_default() += n.as_u64().unwrap_or(0);
            }
        }
        let label = self.opts.label.clone();
        for p in &r.processes {
            let who = Service::of(p, label.as_deref());
            self.add_service(who, p);
        }
        for a in r.anomalies.iter().filter(|a| a.new) {
            let Some(p) = r.processes.get(a.slot) else {
                continue;
            };
            let who = Service::of(p, label.as_deref());
            let key = (a.kind.name(), a.syscall.clone());
            let known = self
                .services
                .get(&who)
                .is_some_and(|e| e.anomalies.contains_key(&key));
            if self.services.contains_key(&who) && (known || self.admit(1)) {
                let e = self.services.get_mut(&who).expect("looked up above");
                *e.anomalies.entry(key).or_default() += 1;
            }
        }
        for l in &r.loops {
            let Some(p) = r.processes.get(l.slot as usize) else {
                continue;
            };
            let who = Service::of(p, label.as_deref());
            let known = self.services.get(&who).is_some_and(|e| e.loops.is_some());
            if self.services.contains_key(&who) && (known || self.admit(1 + HIST_SERIES)) {
                let e = self.services.get_mut(&who).expect("looked up above");
                let t = e.loops.get_or_insert_with(LoopSeries::default);
                t.stalls += l.stalls;
                t.iterations.add(&l.hist, l.busy_ns);
            }
        }
        if self.opts.pid_label {
            self.add_procs(r);
        }
    }

    fn add_service(&mut self, who: Service, p: &ProcessReport) {
        if !self.services.contains_key(&who) {
            // The life and memory families (4 and 11 series); syscalls, sched and
            // crashes are admitted as they come.
            let cost = 4 + if p.memory.is_some() { 11 } else { 0 };
            if !self.admit(cost) {
                return;
            }
            self.services.insert(who.clone(), ServiceSeries::default());
        }
        for row in &p.syscalls {
            self.add_syscall(&who, row);
        }
        if let Some(s) = &p.sched {
            let known = self.services.get(&who).is_some_and(|e| e.sched.is_some());
            if known || self.admit(5 + BLOCK_CAUSES + HIST_SERIES) {
                let e = self.services.get_mut(&who).expect("admitted above");
                let t = e.sched.get_or_insert_with(SchedSeries::default);
                t.voluntary += s.voluntary_switches;
                t.involuntary += s.involuntary_switches;
                t.on_cpu_ns += s.on_cpu_ns;
                t.runqueue_ns += s.runqueue.total_ns;
                t.blocked_ns += s.blocked_ns;
                for (a, (_, b)) in t.blocked_by.iter_mut().zip(s.blocked_by.labelled()) {
                    *a += b;
                }
                t.runqueue.add(&s.runqueue.hist, s.runqueue.total_ns);
            }
        }
        let Some(e) = self.services.get_mut(&who) else {
            return;
        };
        add_life(&mut e.life, &p.life);
        for (sig, n) in &p.crashes_by_signal {
            let known = self.services[&who].crashes.contains_key(sig);
            if known || self.admit(1) {
                let e = self.services.get_mut(&who).expect("admitted above");
                *e.crashes.entry(sig.clone()).or_default() += n;
            }
        }
        let Some(e) = self.services.get_mut(&who) else {
            return;
        };
        if let (Some(m), Some(f)) = (&p.memory, &p.fds) {
            let t = e.memory.get_or_insert_with(MemorySeries::default);
            t.rss_anon = m.rss.end.anon_bytes;
            t.rss_file = m.rss.end.file_bytes;
            t.rss_shmem = m.rss.end.shmem_bytes;
            t.minor_faults += m.page_faults.minor;
            t.major_faults += m.page_faults.major;
            t.fds = f.proc_now.unwrap_or(f.end);
            t.fd_limit = f.limit;
            t.zombies = p.anatomy.as_ref().map(|a| a.zombie_children.count);
            t.limits = [
                (
                    "cgroup",
                    m.limits.cgroup.as_ref().and_then(|c| c.limit_bytes),
                ),
                ("rlimit_as", m.limits.rlimit_as_bytes),
                ("rlimit_data", m.limits.rlimit_data_bytes),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        }
    }

    fn add_syscall(&mut self, who: &Service, row: &SyscallRow) {
        let key = (row.name.clone(), row.abi.name());
        let known = self
            .services
            .get(who)
            .is_some_and(|e| e.syscalls.contains_key(&key));
        if !known && !self.admit(2 + HIST_SERIES) {
            return;
        }
        let new_errnos = {
            let e = &self.services[who];
            row.errnos
                .keys()
                .filter(|k| {
                    e.syscalls
                        .get(&key)
                        .is_none_or(|s| !s.errnos.contains_key(*k))
                })
                .count()
        };
        let errnos_ok = new_errnos == 0 || self.admit(new_errnos);
        let e = self.services.get_mut(who).expect("admitted by add_service");
        let s = e.syscalls.entry(key).or_default();
        s.calls += row.calls;
        s.errors += row.errors;
        for (name, n) in &row.errnos {
            if errnos_ok || s.errnos.contains_key(name) {
                *s.errnos.entry(name.clone()).or_default() += n;
            }
        }
        if row.timed > 0 {
            s.latency.add(&row.hist, row.total_ns.unwrap_or(0));
        }
    }

    fn add_procs(&mut self, r: &Report) {
        let label = self.opts.label.clone();
        let services: Vec<Service> = r
            .processes
            .iter()
            .map(|p| Service::of(p, label.as_deref()))
            .collect();
        let mut rows: Vec<(Option<Service>, String, String, u64, u64, bool)> = r
            .per_process
            .listed
            .iter()
            .filter_map(|e: &ProcEntry| {
                let who = services.get(e.slot as usize)?.clone();
                Some((
                    Some(who),
                    e.comm.clone(),
                    e.pid.to_string(),
                    e.calls,
                    e.errors,
                    e.alive,
                ))
            })
            .collect();
        let other = &r.per_process.other;
        if other.processes > 0 {
            rows.push((
                None,
                String::new(),
                "other".into(),
                other.calls,
                other.errors,
                true,
            ));
        }
        for (who, comm, pid, calls, errors, alive) in rows {
            let key = (who, comm, pid);
            if !self.procs.contains_key(&key) && !self.admit(2) {
                continue;
            }
            let s = self.procs.entry(key).or_default();
            s.calls += calls;
            s.errors += errors;
            if !alive && s.ended_ns.is_none() {
                s.ended_ns = Some(r.end_mono_ns);
            }
        }
        // Ended processes' series go once they have been shown long enough.
        let now = r.end_mono_ns;
        let before = self.procs.len();
        self.procs.retain(|_, s| {
            s.ended_ns
                .is_none_or(|t| now.saturating_sub(t) < ENDED_KEPT_NS)
        });
        self.series -= 2 * (before - self.procs.len());
    }
}

/// The causes of lost events: the fields of the reports' `drops`. Each is a series from
/// the start, at 0 until it loses something: a counter that appeared only with its first
/// loss would make `rate()` and `increase()` miss that loss.
fn lost_causes() -> Vec<String> {
    match serde_json::to_value(crate::model::Drops::default()) {
        Ok(serde_json::Value::Object(o)) => o.into_iter().map(|(k, _)| k).collect(),
        _ => Vec::new(),
    }
}

fn add_life(t: &mut SlotLife, w: &SlotLife) {
    t.started += w.started;
    t.exited += w.exited;
    t.restarted += w.restarted;
    t.oom_kills += w.oom_kills;
    t.crashes += w.crashes;
}

/// A life family: its name, its help, and its count in a slot's life counts.
type LifeFamily = (&'static str, &'static str, fn(&SlotLife) -> u64);

/// A series' labels.
pub type Labels = Vec<(&'static str, String)>;

/// How a family's series add up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Cumulative since tracing started.
    Counter,
    /// A value now.
    Gauge,
    /// A cumulative distribution ([`Hist`]).
    Histogram,
}

/// A number of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl From<u64> for Num {
    fn from(v: u64) -> Self {
        Num::U(v)
    }
}

impl From<i64> for Num {
    fn from(v: i64) -> Self {
        Num::I(v)
    }
}

impl From<f64> for Num {
    fn from(v: f64) -> Self {
        Num::F(v)
    }
}

/// A series' value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Point<'a> {
    Num(Num),
    Hist(&'a Hist),
}

impl Point<'_> {
    fn num(v: impl Into<Num>) -> Self {
        Point::Num(v.into())
    }
}

/// One family and its series, as the exporters (`openmetrics.rs`, `promproto.rs`,
/// `otlp.rs`) write them.
#[derive(Clone, Debug, PartialEq)]
pub struct Family<'a> {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub series: Vec<(Labels, Point<'a>)>,
}

impl<'a> Family<'a> {
    fn new(
        name: &'static str,
        help: &'static str,
        kind: Kind,
        series: impl IntoIterator<Item = (Labels, Point<'a>)>,
    ) -> Self {
        Family {
            name,
            help,
            kind,
            series: series.into_iter().collect(),
        }
    }
}

fn with(mut l: Labels, more: &[(&'static str, &str)]) -> Labels {
    l.extend(more.iter().map(|(k, v)| (*k, value(v))));
    l
}

impl Metrics {
    /// Every family, with its series now: what the exporters write, each in its format.
    pub fn families(&self) -> Vec<Family<'_>> {
        let m = self;
        let mut out = Vec::new();
        let services: Vec<(Labels, &ServiceSeries)> =
            m.services.iter().map(|(w, s)| (w.labels(), s)).collect();
        let rows = || {
            services.iter().flat_map(|(l, s)| {
                s.syscalls.iter().map(move |((name, abi), r)| {
                    (with(l.clone(), &[("syscall", name), ("abi", abi)]), r)
                })
            })
        };
        out.push(Family::new(
            "tracer_syscalls",
            "Syscalls made, by syscall (counted in the kernel, exactly)",
            Kind::Counter,
            rows().map(|(l, r)| (l, Point::num(r.calls))),
        ));
        out.push(Family::new(
            "tracer_syscall_errors",
            "Syscalls that failed, by syscall and errno",
            Kind::Counter,
            rows().flat_map(|(l, r)| {
                r.errnos
                    .iter()
                    .map(move |(e, n)| (with(l.clone(), &[("errno", e)]), Point::num(*n)))
            }),
        ));
        out.push(Family::new("tracer_syscall_duration_seconds", "Syscall latency, from the kernel's histogram (sampled calls weighted by the calls they stand for, unless --exact-latency)", Kind::Histogram, rows()
                .filter(|(_, r)| r.latency.count() > 0)
                .map(|(l, r)| (l, Point::Hist(&r.latency))),
        ));
        let sched = || {
            services
                .iter()
                .filter_map(|(l, s)| s.sched.as_ref().map(|t| (l, t)))
        };
        out.push(Family::new("tracer_context_switches", "Context switches of the service's threads, voluntary (blocked) or involuntary (preempted)", Kind::Counter, sched().flat_map(|(l, t)| {
                [("voluntary", t.voluntary), ("involuntary", t.involuntary)]
                    .map(|(k, n)| (with(l.clone(), &[("kind", k)]), Point::num(n)))
            }),
        ));
        out.push(Family::new(
            "tracer_cpu_seconds",
            "Time of the service's threads by state: on a CPU, runnable in a run queue, blocked",
            Kind::Counter,
            sched().flat_map(|(l, t)| {
                [
                    ("on_cpu", t.on_cpu_ns),
                    ("runqueue", t.runqueue_ns),
                    ("blocked", t.blocked_ns),
                ]
                .map(|(k, n)| (with(l.clone(), &[("state", k)]), Point::num(ns_to_s(n))))
            }),
        ));
        out.push(Family::new(
            "tracer_blocked_seconds",
            "Blocked time of the service's threads by what they waited in: event_wait, sleep and condition are waiting for work; lock, uninterruptible (disk I/O, kernel waits), descriptor (pipes, sockets), other_syscall and outside_syscalls (page faults) waiting on something",
            Kind::Counter,
            sched().flat_map(|(l, t)| {
                BlockedBy::LABELS
                    .iter()
                    .zip(t.blocked_by)
                    .map(|(k, n)| (with(l.clone(), &[("cause", k)]), Point::num(ns_to_s(n))))
                    .collect::<Vec<_>>()
            }),
        ));
        out.push(Family::new("tracer_runqueue_wait_seconds", "Run-queue waits (wakeup or preemption to running); the sum includes waits still open at each report", Kind::Histogram, sched().map(|(l, t)| (l.clone(), Point::Hist(&t.runqueue))),
        ));
        let mem = || {
            services
                .iter()
                .filter_map(|(l, s)| s.memory.as_ref().map(|t| (l, t)))
        };
        out.push(Family::new(
            "tracer_rss_bytes",
            "Resident memory of the target process, by type (/proc/PID/status)",
            Kind::Gauge,
            mem().flat_map(|(l, t)| {
                [
                    ("anon", t.rss_anon),
                    ("file", t.rss_file),
                    ("shmem", t.rss_shmem),
                ]
                .map(|(k, n)| (with(l.clone(), &[("type", k)]), Point::num(n as i64)))
            }),
        ));
        out.push(Family::new(
            "tracer_page_faults",
            "Page faults of the target process, minor or major",
            Kind::Counter,
            mem().flat_map(|(l, t)| {
                [("minor", t.minor_faults), ("major", t.major_faults)]
                    .map(|(k, n)| (with(l.clone(), &[("kind", k)]), Point::num(n)))
            }),
        ));
        out.push(Family::new(
            "tracer_open_fds",
            "Open file descriptors of the target process",
            Kind::Gauge,
            mem().map(|(l, t)| (l.clone(), Point::num(t.fds as i64))),
        ));
        out.push(Family::new(
            "tracer_fd_limit",
            "RLIMIT_NOFILE (soft) of the target process",
            Kind::Gauge,
            mem().filter_map(|(l, t)| t.fd_limit.map(|n| (l.clone(), Point::num(n as i64)))),
        ));
        out.push(Family::new(
            "tracer_zombie_children",
            "Children of the target process that exited and were not reaped (from its anatomy)",
            Kind::Gauge,
            mem().filter_map(|(l, t)| t.zombies.map(|n| (l.clone(), Point::num(n as i64)))),
        ));
        out.push(Family::new(
            "tracer_memory_limit_bytes",
            "Memory limits in force for the target process: its cgroup's, RLIMIT_AS, RLIMIT_DATA",
            Kind::Gauge,
            mem().flat_map(|(l, t)| {
                t.limits
                    .iter()
                    .map(move |(k, n)| (with(l.clone(), &[("limit", k)]), Point::num(*n as i64)))
            }),
        ));
        let life: [LifeFamily; 4] = [
            (
                "tracer_process_starts",
                "Processes that joined the service while tracing (followed children, processes a selector took in)",
                |l| l.started,
            ),
            (
                "tracer_process_exits",
                "Processes of the service that exited",
                |l| l.exited,
            ),
            (
                "tracer_process_restarts",
                "Starts that replaced an exited process of the service (a supervisor's restart)",
                |l| l.restarted,
            ),
            (
                "tracer_oom_kills",
                "Processes of the service the OOM killer chose",
                |l| l.oom_kills,
            ),
        ];
        for (name, help, get) in life {
            out.push(Family::new(
                name,
                help,
                Kind::Counter,
                services
                    .iter()
                    .map(|(l, s)| (l.clone(), Point::num(get(&s.life)))),
            ));
        }
        out.push(Family::new(
            "tracer_crashes",
            "Crash signals the service's threads got, by signal: a fault's SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP or SIGSYS, or SIGABRT (abort); fatal or handled",
            Kind::Counter,
            services.iter().flat_map(|(l, s)| {
                s.crashes
                    .iter()
                    .map(move |(sig, n)| (with(l.clone(), &[("signal", sig)]), Point::num(*n)))
            }),
        ));
        out.push(Family::new(
            "tracer_anomalies",
            "Anomalies begun: a syscall's rate, error rate or p99 beyond the run's own recent robust spread (kind rate, error_rate, p99), or an errno not seen before (new_errno)",
            Kind::Counter,
            services.iter().flat_map(|(l, s)| {
                s.anomalies.iter().map(move |((kind, syscall), n)| {
                    (
                        with(l.clone(), &[("kind", kind), ("syscall", syscall)]),
                        Point::num(*n),
                    )
                })
            }),
        ));
        let loops = || {
            services
                .iter()
                .filter_map(|(l, s)| s.loops.as_ref().map(|t| (l, t)))
        };
        out.push(Family::new(
            "tracer_loop_iteration_seconds",
            "Busy time of each event-loop iteration (a wait's return, epoll/poll/select, to the next wait) of the service's loop threads",
            Kind::Histogram,
            loops().map(|(l, t)| (l.clone(), Point::Hist(&t.iterations))),
        ));
        out.push(Family::new(
            "tracer_loop_stalls",
            "Event-loop iterations of --stall or more (default 100 ms)",
            Kind::Counter,
            loops().map(|(l, t)| (l.clone(), Point::num(t.stalls))),
        ));
        let proc_labels = |(w, comm, pid): &(Option<Service>, String, String)| {
            let mut l = w.as_ref().map_or_else(Labels::new, Service::labels);
            if !comm.is_empty() {
                l.retain(|(k, _)| *k != "comm");
                l.push(("comm", value(comm)));
            }
            l.push(("pid", pid.clone()));
            l
        };
        out.push(Family::new("tracer_process_syscalls", "Syscalls of each process (--metrics-pid; the processes beyond those listed under pid=\"other\")", Kind::Counter, m.procs.iter().map(|(k, s)| (proc_labels(k), Point::num(s.calls)))));
        out.push(Family::new(
            "tracer_process_syscall_errors",
            "Syscalls of each process that failed (--metrics-pid; as tracer_process_syscalls)",
            Kind::Counter,
            m.procs
                .iter()
                .map(|(k, s)| (proc_labels(k), Point::num(s.errors))),
        ));
        out.push(Family::new("tracer_lost_events", "What the kernel side could not record, by cause (a full table, a full ring buffer, skipped program runs, ...)", Kind::Counter, m.lost
                .iter()
                .map(|(c, n)| (vec![("cause", value(c))], Point::num(*n))),
        ));
        out.push(Family::new(
            "tracer_series_overflow",
            "Updates of series not made because the series limit (--max-series) was reached",
            Kind::Counter,
            [(Labels::new(), Point::num(m.overflow))],
        ));
        out.push(Family::new(
            "tracer_series",
            "Series tracer exports now, against its limit",
            Kind::Gauge,
            [
                (
                    vec![("of", "used".to_string())],
                    Point::num(m.series as i64),
                ),
                (
                    vec![("of", "limit".to_string())],
                    Point::num(m.opts.series_limit as i64),
                ),
            ],
        ));
        out.push(Family::new(
            "tracer_reports",
            "Interval reports taken into these metrics",
            Kind::Counter,
            [(Labels::new(), Point::num(m.updates))],
        ));
        let own = &m.own;
        out.push(Family::new(
            "tracer_self_cpu_seconds",
            "CPU time of tracer itself (user and system)",
            Kind::Counter,
            [(Labels::new(), Point::num(own.cpu_seconds))],
        ));
        out.push(Family::new(
            "tracer_self_rss_bytes",
            "Resident memory of tracer itself",
            Kind::Gauge,
            [(Labels::new(), Point::num(own.rss_bytes as i64))],
        ));
        out.push(Family::new(
            "tracer_self_kernel_map_bytes",
            "Kernel memory of tracer's eBPF maps (their memlock)",
            Kind::Gauge,
            [(Labels::new(), Point::num(own.map_bytes as i64))],
        ));
        out.push(Family::new(
            "tracer_bpf_program_seconds",
            "Run time of tracer's eBPF programs (with --bpf-stats)",
            Kind::Counter,
            own.programs
                .iter()
                .map(|(p, ns, _)| (vec![("program", value(p))], Point::num(ns_to_s(*ns)))),
        ));
        out.push(Family::new(
            "tracer_bpf_program_runs",
            "Runs of tracer's eBPF programs (with --bpf-stats)",
            Kind::Counter,
            own.programs
                .iter()
                .map(|(p, _, n)| (vec![("program", value(p))], Point::num(*n))),
        ));
        out.push(Family::new(
            "tracer_otlp_push_failures",
            "OTLP pushes (--otlp) that failed; each interval's push carries the whole run",
            Kind::Counter,
            m.push_failures.map(|n| (Labels::new(), Point::num(n))),
        ));
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::model::{ProcessInfo, ReportKind, Sample, SyscallCounts, ctx, window};

    /// A report of one interval of `secs` in which slot 0 (`comm`) made `calls` of syscall
    /// `nr`, each taking `ns`, `failed` of them with ENOENT.
    pub(crate) fn report(comm: &str, nr: u32, calls: u64, ns: u64, failed: u64) -> Report {
        let mut c = SyscallCounts {
            calls,
            timed: calls,
            total_ns: calls * ns,
            max_ns: ns,
            errors: failed,
            ..Default::default()
        };
        c.hist[hist::bucket(ns)] = calls;
        if failed > 0 {
            c.errnos.insert(2, failed);
        }
        let mut s = Sample::default();
        s.syscalls.insert((0, nr), c);
        let targets = [ProcessInfo {
            pid: 42,
            comm: comm.into(),
        }];
        Report::build(&window(ReportKind::Interval, &s, 1.0), &ctx(&targets))
    }

    fn opts(limit: usize) -> Options {
        Options {
            series_limit: limit,
            label: None,
            pid_label: false,
        }
    }

    fn exposition(m: Metrics) -> String {
        use crate::sink::openmetrics::{encode, registry};
        encode(&registry(Arc::new(Mutex::new(m))))
    }

    /// A classic bucket holds exactly the kernel buckets below its bound: each kernel
    /// bucket lies within one power of two.
    #[test]
    fn classic_buckets_are_sums_of_kernel_buckets() {
        let mut k = vec![0u64; hist::BUCKETS];
        for (v, n) in [
            (0u64, 1u64),
            (100, 2),
            (127, 3),
            (128, 4),
            (1000, 5),
            (1 << 40, 6),
        ] {
            k[hist::bucket(v)] += n;
        }
        let mut h = Hist::default();
        h.add(&k, 12345);
        let c = h.classic();
        assert_eq!(c.len(), MAX_LOG2 - MIN_LOG2 + 2);
        // Below 128 ns: the 0, 100 and 127 ns values.
        assert_eq!(c[0], (128e-9, 6));
        // [128, 256): the 128 ns ones; [512, 1024): the 1000 ns ones.
        assert_eq!(c[1], (256e-9, 4));
        assert_eq!(c[3], (1024e-9, 5));
        // Beyond 2^35 ns: +Inf.
        assert_eq!(*c.last().unwrap(), (f64::INFINITY, 6));
        assert_eq!(h.count(), 21);
        assert_eq!(c.iter().map(|(_, n)| n).sum::<u64>(), 21);
        assert_eq!(h.sum_ns, 12345);
    }

    /// Crash signals are counted by signal under their service, summed over the
    /// interval reports; a new signal is a new series.
    #[test]
    fn crashes_are_counted_by_signal() {
        let mut m = Metrics::new(opts(DEFAULT_SERIES_LIMIT));
        for (sig, n) in [("SIGSEGV", 2), ("SIGSEGV", 1), ("SIGABRT", 1)] {
            let mut r = report("app", 39, 1, 1000, 0);
            r.processes[0].crashes_by_signal.insert(sig.into(), n);
            r.processes[0].life.crashes = n;
            m.add(&r);
        }
        let t = exposition(m);
        assert!(
            t.contains(r#"tracer_crashes_total{service="app",comm="app",signal="SIGSEGV"} 3"#),
            "{t}"
        );
        assert!(
            t.contains(r#"tracer_crashes_total{service="app",comm="app",signal="SIGABRT"} 1"#),
            "{t}"
        );
    }

    /// Each anomaly is counted once, in the window it began in, under its service.
    #[test]
    fn anomalies_are_counted_when_they_begin() {
        let mut d = crate::model::anomaly::Detector::default();
        let mut m = Metrics::new(opts(DEFAULT_SERIES_LIMIT));
        for (t, calls) in
            (0..12)
                .map(|t| (t, 1000))
                .chain([(12, 9000), (13, 9000), (14, 1000), (15, 9000)])
        {
            let mut r = report("app", 110, calls, 300, 0);
            r.start =
                crate::model::WallClock(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t));
            r.judge(&mut d);
            m.add(&r);
        }
        let text = exposition(m);
        assert!(
            text.contains(r#"tracer_anomalies_total{service="app",comm="app",kind="rate",syscall="getppid"} 2"#),
            "{text}"
        );
    }

    /// Counters are the sums of the interval reports; the histogram's count and sum too.
    #[test]
    fn counters_sum_the_intervals() {
        let mut m = Metrics::new(opts(DEFAULT_SERIES_LIMIT));
        m.add(&report("app", 110, 40, 300, 0)); // getppid
        m.add(&report("app", 110, 60, 300, 0));
        m.add(&report("app", 257, 10, 5000, 3)); // openat
        let t = exposition(m);
        let line = |prefix: &str| {
            t.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {t}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        let who = r#"service="app",comm="app""#;
        assert_eq!(
            line(&format!(
                r#"tracer_syscalls_total{{{who},syscall="getppid",abi="x86_64"}}"#
            )),
            "100"
        );
        assert_eq!(
            line(&format!(
                r#"tracer_syscall_errors_total{{{who},syscall="openat",abi="x86_64",errno="ENOENT"}}"#
            )),
            "3"
        );
        assert_eq!(
            line(&format!(
                r#"tracer_syscall_duration_seconds_count{{{who},syscall="getppid",abi="x86_64"}}"#
            )),
            "100"
        );
        assert_eq!(
            line(&format!(
                r#"tracer_syscall_duration_seconds_sum{{{who},syscall="getppid",abi="x86_64"}}"#
            ))
            .parse::<f64>()
            .unwrap(),
            3e-5
        );
        assert_eq!(line("tracer_reports_total"), "3");
        assert!(t.ends_with("# EOF\n"), "{t}");
    }

    /// Every cause of lost events is a series from the start (before the first report
    /// too), at 0 until it loses something: a counter that first appears with its first
    /// loss would make Prometheus's `rate()` and `increase()` miss that loss.
    #[test]
    fn lost_events_have_every_cause_from_the_start() {
        let mut causes = lost_causes();
        causes.sort();
        assert_eq!(causes.len(), 12, "{causes:?}");
        assert!(
            causes.contains(&"ring_buffer_full".to_string()),
            "{causes:?}"
        );
        let lost = |m: &Metrics| -> BTreeMap<String, Num> {
            let f = m.families();
            let f = f.iter().find(|f| f.name == "tracer_lost_events").unwrap();
            f.series
                .iter()
                .map(|(l, p)| match (l.as_slice(), p) {
                    ([("cause", c)], Point::Num(n)) => (c.clone(), *n),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let mut m = Metrics::new(opts(DEFAULT_SERIES_LIMIT));
        for _ in 0..2 {
            // Before any report, then after the first.
            let now = lost(&m);
            assert_eq!(now.keys().cloned().collect::<Vec<_>>(), causes);
            assert!(now.values().all(|n| *n == Num::U(0)), "{now:?}");
            m.add(&report("app", 110, 5, 300, 0));
        }
        let mut r = report("app", 110, 5, 300, 0);
        r.drops.ring_buffer_full = 3;
        m.add(&r);
        m.add(&report("app", 110, 5, 300, 0));
        let now = lost(&m);
        assert_eq!(now.len(), causes.len());
        assert_eq!(now["ring_buffer_full"], Num::U(3));
        assert_eq!(now.values().filter(|n| **n != Num::U(0)).count(), 1);
        let t = exposition(m);
        assert!(
            t.contains(r#"tracer_lost_events_total{cause="errno_map_full"} 0"#),
            "{t}"
        );
        assert!(
            t.contains(r#"tracer_lost_events_total{cause="ring_buffer_full"} 3"#),
            "{t}"
        );
    }

    /// tests/metrics.rs's `every_family_holds_what_the_final_report_holds` checks each
    /// family the endpoint exports against the final report, and fails on a family it does
    /// not know; this holds it to every family there is, those its run does not export too.
    #[test]
    fn every_family_is_checked_by_tests_metrics() {
        let test = include_str!("../../tests/metrics.rs");
        let m = Metrics::new(opts(DEFAULT_SERIES_LIMIT));
        let names: Vec<&str> = m.families().iter().map(|f| f.name).collect();
        assert!(names.len() > 30, "{names:?}");
        for name in names {
            assert!(
                test.contains(&format!("\"{name}\"")),
                "{name} is not checked in tests/metrics.rs"
            );
        }
    }

    /// A process name is another user's input: it reaches the exposition escaped, never
    /// with a raw control character, quote or line break.
    #[test]
    fn names_are_escaped() {
        let mut m = Metrics::new(opts(DEFAULT_SERIES_LIMIT));
        m.add(&report("a\"b\n\u{1b}[2J", 110, 1, 300, 0));
        let t = exposition(m);
        let line = t
            .lines()
            .find(|l| l.starts_with("tracer_syscalls_total"))
            .unwrap();
        assert!(line.contains(r#"comm="a\"b\\n\\33[2J""#), "{line}");
        assert!(!t.contains('\u{1b}'), "{t}");
    }

    /// Beyond the limit no series is added; each refused update is counted.
    #[test]
    fn series_stop_at_the_limit_and_the_overflow_is_counted() {
        // Room for the service and one syscall, not two.
        let one = 4 + 2 + HIST_SERIES;
        let mut m = Metrics::new(opts(one + 1));
        m.add(&report("app", 110, 5, 300, 0));
        m.add(&report("app", 39, 5, 300, 0)); // getpid: refused
        m.add(&report("app", 110, 5, 300, 0)); // getppid again: admitted already
        assert_eq!(m.series, one);
        assert_eq!(m.overflow, 1);
        let t = exposition(m);
        assert!(t.contains(r#"syscall="getppid""#));
        assert!(!t.contains(r#"syscall="getpid""#), "{t}");
        assert!(t.contains("tracer_series_overflow_total 1"), "{t}");
    }

    #[test]
    fn services_are_named_after_their_selector_or_process() {
        let entry = |pid: u32, comm: &str, selector: Option<&str>| ProcessReport {
            pid,
            comm: comm.into(),
            selector: selector.map(str::to_string),
            totals: Default::default(),
            syscalls: Vec::new(),
            sched: None,
            memory: None,
            fds: None,
            anatomy: None,
            members: Vec::new(),
            life: SlotLife::default(),
            crashes_by_signal: Default::default(),
        };
        let of = |p: &ProcessReport, l: Option<&str>| {
            let s = Service::of(p, l);
            (s.service, s.comm)
        };
        assert_eq!(
            of(&entry(7, "nginx", None), None),
            ("nginx".into(), Some("nginx".into()))
        );
        assert_eq!(
            of(&entry(0, "comm:node", Some("comm:node")), None),
            ("node".into(), Some("node".into()))
        );
        assert_eq!(
            of(
                &entry(
                    0,
                    "",
                    Some("cgroup:/sys/fs/cgroup/system.slice/app.service/")
                ),
                None
            ),
            ("app.service".into(), None)
        );
        assert_eq!(
            of(&entry(0, "", Some("exe:/usr/bin/node")), Some("api")),
            ("api".into(), None)
        );
    }
}
