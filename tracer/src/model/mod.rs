//! The model: pure data and arithmetic, no I/O. `collect` fills a [`Sample`] (cumulative
//! counters as read from the kernel) and a [`memory::MemSample`]; [`Sample::since`] turns two
//! samples into the counts of one interval; [`Report::build`] turns the counts of a
//! [`Window`] into the whole report (rows with rates and percentiles, scheduling, life,
//! memory), which `render` prints. Reports are built here only.
pub mod anatomy;
pub mod anomaly;
pub mod blocked;
pub mod compare;
pub mod events;
pub mod loops;
pub mod memory;
pub mod procs;
pub mod roles;
pub mod sched;
pub mod strace;

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use events::{CrashReport, EventLog, LifeCounts, ProcessEvent};
use sched::{SchedCounts, SchedReport, ThreadCounts, ThreadRow};

use serde::Serialize;
use tracer_common::{SYSCALL_OTHER, SYSCALL_SLOTS, SyscallStats, SyscallTiming, hist};

/// Counters of one (process slot, syscall), summed over CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallCounts {
    pub calls: u64,
    pub errors: u64,
    /// Calls whose latency was measured; the histogram and `total_ns` hold weighted
    /// counts that estimate all `calls` (see [`tracer_common::SyscallTiming`]).
    pub timed: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    /// `max_ns` is not a measurement but an upper bound (see [`interval_max`]).
    pub max_bound: bool,
    pub hist: Vec<u64>,
    /// errno -> failed calls.
    pub errnos: BTreeMap<u32, u64>,
}

impl Default for SyscallCounts {
    fn default() -> Self {
        Self {
            calls: 0,
            errors: 0,
            timed: 0,
            total_ns: 0,
            max_ns: 0,
            max_bound: false,
            hist: vec![0; hist::BUCKETS],
            errnos: BTreeMap::new(),
        }
    }
}

impl SyscallCounts {
    /// Adds one CPU's (or one process's) counters into these.
    pub fn add(&mut self, other: &Self) {
        self.add_numbers(Numbers {
            calls: other.calls,
            errors: other.errors,
            timed: other.timed,
            total_ns: other.total_ns,
            max_ns: other.max_ns,
            max_bound: other.max_bound,
            hist: &other.hist,
        });
        for (e, n) in &other.errnos {
            *self.errnos.entry(*e).or_default() += n;
        }
    }

    /// Adds one CPU's kernel counters.
    pub fn add_raw(&mut self, s: &SyscallStats) {
        self.add_numbers(Numbers {
            calls: s.calls,
            errors: s.errors,
            timed: s.timed,
            total_ns: s.total_ns,
            max_ns: s.max_ns,
            max_bound: false,
            hist: &s.hist,
        });
    }

    fn add_numbers(&mut self, n: Numbers) {
        self.calls += n.calls;
        self.errors += n.errors;
        self.timed += n.timed;
        self.total_ns += n.total_ns;
        (self.max_ns, self.max_bound) =
            larger_max((self.max_ns, self.max_bound), (n.max_ns, n.max_bound));
        for (a, b) in self.hist.iter_mut().zip(n.hist) {
            *a += b;
        }
    }

    /// Counts since `prev` (an earlier reading of the same counters). The kernel keeps a
    /// running maximum, so the interval's max is bounded by the highest bucket that
    /// received calls in the interval, and never above the running maximum.
    pub fn since(&self, prev: &Self) -> Self {
        let hist: Vec<u64> = self
            .hist
            .iter()
            .zip(&prev.hist)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let (max_ns, max_bound) = interval_max(&hist, self.max_ns, prev.max_ns);
        let errnos = self
            .errnos
            .iter()
            .map(|(e, n)| {
                (
                    *e,
                    n.saturating_sub(prev.errnos.get(e).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        Self {
            calls: self.calls.saturating_sub(prev.calls),
            errors: self.errors.saturating_sub(prev.errors),
            timed: self.timed.saturating_sub(prev.timed),
            total_ns: self.total_ns.saturating_sub(prev.total_ns),
            max_ns,
            max_bound,
            hist,
            errnos,
        }
    }

    /// Total latency of all calls: the kernel's sum when every call was timed, otherwise
    /// `calls` times the weighted mean of the timed calls (a ratio estimate: unlike the
    /// weighted sum itself, it keeps the average between the smallest and the largest
    /// latency measured, even for a syscall with few calls).
    pub fn estimated_total_ns(&self) -> u64 {
        let weights: u64 = self.hist.iter().sum();
        if self.timed >= self.calls || weights == 0 {
            return self.total_ns;
        }
        (self.total_ns as u128 * self.calls as u128 / weights as u128) as u64
    }

    /// The `q` quantile (0..=1) in ns, from the histogram: the bucket holding the rank,
    /// interpolated linearly inside it, and clamped to the observed maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        percentile(&self.hist, q).min(self.max_ns)
    }
}

/// The summable counters of [`SyscallCounts`] and of the kernel's [`SyscallStats`].
struct Numbers<'a> {
    calls: u64,
    errors: u64,
    timed: u64,
    total_ns: u64,
    max_ns: u64,
    max_bound: bool,
    hist: &'a [u64],
}

/// The largest value of an interval, from cumulative running maxima and the interval's
/// histogram: a new maximum if it grew (measured), else (the kernel keeps only the running
/// one) the top of the highest bucket the interval filled, never above the running maximum:
/// an upper bound, said by the second value.
pub fn interval_max(interval_hist: &[u64], max_now: u64, max_before: u64) -> (u64, bool) {
    if max_now > max_before {
        return (max_now, false);
    }
    match interval_hist.iter().rposition(|&n| n > 0) {
        Some(b) => ((hist::upper_bound(b) - 1).min(max_now), true),
        None => (0, false),
    }
}

/// The larger of two (maximum, is-a-bound) pairs; a tie is measured if either is.
pub fn larger_max(a: (u64, bool), b: (u64, bool)) -> (u64, bool) {
    match a.0.cmp(&b.0) {
        std::cmp::Ordering::Less => b,
        std::cmp::Ordering::Greater => a,
        std::cmp::Ordering::Equal => (a.0, a.1 && b.1),
    }
}

/// Quantile of a [`hist`]-layout histogram, interpolated inside the bucket.
pub fn percentile(buckets: &[u64], q: f64) -> u64 {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return 0;
    }
    // Rank of the wanted observation, 1-based: the smallest r with r >= q * total.
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0u64;
    for (b, &n) in buckets.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if seen + n >= rank {
            let lo = hist::lower_bound(b) as f64;
            let hi = hist::upper_bound(b) as f64;
            // Observations are spread evenly over the bucket; take the middle of the
            // rank's share of it.
            let frac = ((rank - seen) as f64 - 0.5) / n as f64;
            return (lo + (hi - lo) * frac) as u64;
        }
        seen += n;
    }
    hist::lower_bound(buckets.len() - 1)
}

/// Everything read from the kernel at one moment; cumulative since attach.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// (target slot, syscall nr) -> counters.
    pub syscalls: BTreeMap<(u32, u32), SyscallCounts>,
    /// What the kernel side failed to record, by kind.
    pub drops: Drops,
    /// Scheduling counters per target slot (None when the section is off).
    pub sched: Option<BTreeMap<u32, SchedCounts>>,
    /// Scheduling counters per thread id.
    pub threads: BTreeMap<u32, ThreadCounts>,
    /// Ended threads dropped from `threads` since tracing started (cumulative, also in a
    /// window's sample; see `collect::sched::MAX_ENDED_THREADS`).
    pub threads_dropped: u64,
    /// Each traced process's own counts (see [`procs`]).
    pub procs: BTreeMap<procs::ProcKey, procs::ProcCount>,
    /// Loop threads by tid (see [`loops`]).
    pub loops: BTreeMap<u32, loops::LoopCounts>,
    /// Per-thread syscall counts (`--threads`): (tid, syscall nr) -> counts.
    pub thread_calls: BTreeMap<(u32, u32), sched::ThreadCallCounts>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Drops {
    /// Failed calls whose errno could not be recorded (the errno map was full).
    pub errno_map_full: u64,
    /// Syscalls or switches of traced threads that found no entry in a per-thread table
    /// (its set was full: more live traced threads with ids congruent modulo its sets than
    /// it has ways; possible only with pid_max above 65536).
    pub thread_table_full: u64,
    /// Events lost because the ring buffer was full.
    pub ring_buffer_full: u64,
    /// Threads whose own scheduling counters could not be kept (the map was full).
    pub thread_stats_full: u64,
    /// Memory or descriptor syscalls of a slot beyond the memory maps (never expected).
    pub mem_slot_out_of_range: u64,
    /// New tasks whose kernel stack could not be read (never expected; see the kernel
    /// side's `Drop::TaskStackUnreadable`).
    pub task_stack_unreadable: u64,
    /// Descriptors received in messages beyond what the kernel side reads per `recvmsg`
    /// or `recvmmsg` (calls with more control messages or messages), not counted.
    pub fds_unscanned: u64,
    /// 32-bit syscalls not counted: their (process, syscall) row did not fit the rows kept.
    pub compat_rows_full: u64,
    /// Calls not counted in a thread's own table (`--threads`; never expected).
    pub thread_calls_full: u64,
    /// Ring-buffer records userspace could not decode (never expected: the two sides are
    /// built together).
    pub undecodable_events: u64,
    /// Runs of tracer's programs that the kernel skipped, any process's: a run of the same
    /// program was in progress on that CPU (preempted, where syscall tracepoints may
    /// fault). Syscalls of traced processes may be short by up to this many; it is an
    /// upper bound, not in [`Drops::total`].
    pub skipped_runs: u64,
    /// Of those, runs of the second program of a life event's hook (fork, exec, exit,
    /// signal): an event is missed only when the kernel skipped both programs' runs for
    /// it, so this bounds the life events missed, any process's (not in the total either).
    pub life_events_missed: u64,
}

impl Drops {
    pub fn total(&self) -> u64 {
        self.errno_map_full
            + self.thread_table_full
            + self.ring_buffer_full
            + self.thread_stats_full
            + self.mem_slot_out_of_range
            + self.task_stack_unreadable
            + self.fds_unscanned
            + self.compat_rows_full
            + self.thread_calls_full
            + self.undecodable_events
    }

    fn since(&self, prev: &Self) -> Self {
        Self {
            errno_map_full: self.errno_map_full.saturating_sub(prev.errno_map_full),
            thread_table_full: self
                .thread_table_full
                .saturating_sub(prev.thread_table_full),
            ring_buffer_full: self.ring_buffer_full.saturating_sub(prev.ring_buffer_full),
            thread_stats_full: self
                .thread_stats_full
                .saturating_sub(prev.thread_stats_full),
            mem_slot_out_of_range: self
                .mem_slot_out_of_range
                .saturating_sub(prev.mem_slot_out_of_range),
            task_stack_unreadable: self
                .task_stack_unreadable
                .saturating_sub(prev.task_stack_unreadable),
            fds_unscanned: self.fds_unscanned.saturating_sub(prev.fds_unscanned),
            compat_rows_full: self.compat_rows_full.saturating_sub(prev.compat_rows_full),
            thread_calls_full: self
                .thread_calls_full
                .saturating_sub(prev.thread_calls_full),
            undecodable_events: self
                .undecodable_events
                .saturating_sub(prev.undecodable_events),
            skipped_runs: self.skipped_runs.saturating_sub(prev.skipped_runs),
            life_events_missed: self
                .life_events_missed
                .saturating_sub(prev.life_events_missed),
        }
    }
}

impl Sample {
    /// What happened between `prev` and `self`.
    pub fn since(&self, prev: &Sample) -> Sample {
        let empty = SyscallCounts::default();
        let syscalls = self
            .syscalls
            .iter()
            .map(|(k, v)| (*k, v.since(prev.syscalls.get(k).unwrap_or(&empty))))
            .filter(|(_, v)| v.calls > 0)
            .collect();
        let empty = SchedCounts::default();
        let sched = self.sched.as_ref().map(|m| {
            m.iter()
                .map(|(slot, c)| {
                    let before = prev
                        .sched
                        .as_ref()
                        .and_then(|p| p.get(slot))
                        .unwrap_or(&empty);
                    (*slot, c.since(before))
                })
                .collect()
        });
        let threads = self
            .threads
            .iter()
            .map(|(tid, t)| {
                // The id's earlier owner, if another process's thread, is not this one.
                let before = prev
                    .threads
                    .get(tid)
                    .filter(|p| p.pid == t.pid && p.slot == t.slot)
                    .map_or(&empty, |p| &p.counts);
                (
                    *tid,
                    ThreadCounts {
                        counts: t.counts.since(before),
                        ..t.clone()
                    },
                )
            })
            .filter(|(_, t)| t.alive || t.counts.wall_ns() > 0)
            .collect();
        Sample {
            syscalls,
            drops: self.drops.since(&prev.drops),
            sched,
            threads,
            threads_dropped: self.threads_dropped, // cumulative
            procs: procs::since(&self.procs, &prev.procs),
            loops: self
                .loops
                .iter()
                .map(|(tid, c)| (*tid, c.since(prev.loops.get(tid))))
                .collect(),
            thread_calls: self
                .thread_calls
                .iter()
                .map(|(k, c)| (*k, c.since(prev.thread_calls.get(k))))
                .filter(|(_, c)| c.calls > 0)
                .collect(),
        }
    }
}

/// A traced process, as the report names it; or a selector's entry (pid 0, `comm` its
/// label such as `comm:nginx`), under which the processes it takes in are counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub comm: String,
}

impl ProcessInfo {
    pub fn selector(label: String) -> Self {
        ProcessInfo {
            pid: 0,
            comm: label,
        }
    }

    /// The selector's label, for a selector's entry.
    pub fn selector_label(&self) -> Option<&str> {
        (self.pid == 0).then_some(self.comm.as_str())
    }

    /// How reports name it: `PID (comm)`, or the selector's label.
    pub fn name(pid: u32, comm: &str) -> String {
        if pid == 0 {
            comm.to_string()
        } else {
            format!("{pid} ({comm})")
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    Interval,
    Final,
}

/// One row of the syscall table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyscallRow {
    pub name: String,
    /// The number in its ABI's table.
    pub nr: u32,
    /// Which entry the calls came through, so which table names them.
    pub abi: Abi,
    pub calls: u64,
    pub calls_per_s: f64,
    pub errors: u64,
    /// errno name -> count.
    pub errnos: BTreeMap<String, u64>,
    /// Calls whose latency was measured (the latency columns estimate all `calls` from
    /// them when fewer; with none, they are None: no latency is known).
    pub timed: u64,
    pub total_ns: Option<u64>,
    pub avg_ns: Option<u64>,
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub max_ns: Option<u64>,
    /// `max_ns` is the upper bound of a histogram bucket, not a measurement (an interval's
    /// maximum, when it set no new running maximum).
    pub max_is_bound: bool,
    /// The latency histogram (`tracer_common::hist` buckets, each timed call weighted by
    /// the calls it stands for): for sinks that export distributions (metrics).
    #[serde(skip)]
    pub hist: Vec<u64>,
    /// A call a thread makes to wait for work (see [`idle_wait`]): its time is idle time,
    /// not time the work took, and the text table sets it apart.
    pub idle_wait: bool,
}

/// Syscalls whose time is waiting for work rather than doing it: those whose blocked
/// time is an event wait or a sleep (see [`blocked::cause_of`]): event loops' waits
/// (epoll, poll, select and their variants), a blocking accept, asynchronous I/O
/// completions (io_getevents, io_uring_enter), sleeps, waits for a child or a signal.
/// futex is not among them: a futex wait is as often a contended lock as an idle pool
/// thread (the blocked-time causes tell them apart by operation).
pub fn idle_wait(name: &str) -> bool {
    use tracer_common::block_cause::{EVENT_WAIT, SLEEP};
    matches!(blocked::cause_of(name), EVENT_WAIT | SLEEP)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    pub calls: u64,
    pub calls_per_s: f64,
    pub errors: u64,
    /// Calls whose latency was measured.
    pub timed: u64,
    pub total_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessReport {
    /// 0 for a selector's entry.
    pub pid: u32,
    pub comm: String,
    /// A selector's entry: its label (`comm:NAME`, `cgroup:PATH`); the processes it took in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    pub totals: Totals,
    pub syscalls: Vec<SyscallRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sched: Option<SchedReport>,
    /// Memory section (when selected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<memory::MemoryReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fds: Option<memory::FdReport>,
    /// What the process is made of at the window's end, or at its last reading before it
    /// ended (memory section; not for a selector's processes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anatomy: Option<anatomy::Anatomy>,
    /// A selector's entry: the anatomies of the first of its processes still running
    /// (at most [`anatomy::MEMBERS_READ`]; memory section).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<anatomy::MemberAnatomy>,
    /// Its processes' starts, exits, restarts and OOM kills (with the life section).
    pub life: events::SlotLife,
    /// Its crash signals by name (for the metrics; JSON has the crashes themselves).
    #[serde(skip)]
    pub crashes_by_signal: BTreeMap<String, u64>,
}

/// How a launched command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CommandExit {
    pub pid: u32,
    /// Exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Signal name, if a signal killed it.
    pub signal: Option<&'static str>,
    #[serde(skip)]
    pub signo: Option<i32>,
}

impl CommandExit {
    /// tracer's own exit status: the command's, or 128+N for a signal N, as shells do.
    pub fn status(&self) -> u8 {
        match (self.exit_code, self.signo) {
            (Some(c), _) => c as u8,
            (None, Some(s)) => (128 + s) as u8,
            _ => 1,
        }
    }
}

/// The version of the JSON objects' shape (docs/json-schema.md has the changelog).
pub const SCHEMA_VERSION: u32 = 2;

/// A moment on the wall clock (UTC). The model keeps the time; `render::json` writes it as
/// RFC 3339 (its `Serialize` impl lives there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallClock(pub SystemTime);

/// What one report says: the whole model, ready to render. Every count is of the window
/// `[start, end]`; readings are at `end` (docs/json-schema.md gives each field's scope).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    #[serde(rename = "type")]
    pub kind: ReportKind,
    /// The window's bounds on the wall clock, derived from the monotonic ones with one
    /// offset for the whole run, so that consecutive windows share their bound exactly.
    pub start: WallClock,
    pub end: WallClock,
    /// The same bounds on CLOCK_MONOTONIC (the clock of `bpf_ktime_get_ns`), in ns.
    pub start_mono_ns: u64,
    pub end_mono_ns: u64,
    /// `(end_mono_ns - start_mono_ns) / 1e9`.
    pub duration_s: f64,
    pub pids: Vec<u32>,
    /// Merged over all traced processes, sorted by total time, highest first.
    pub syscalls: Vec<SyscallRow>,
    pub totals: Totals,
    /// How the latency columns were measured.
    pub latency_timing: LatencyTiming,
    /// Everything the kernel side could not record (sum of `drops`).
    pub lost_events: u64,
    pub drops: Drops,
    pub processes: Vec<ProcessReport>,
    /// Every traced process on its own (the processes each target or selector counts
    /// together): the busiest listed, the rest summed.
    pub per_process: procs::ProcsReport,
    /// Scheduling, merged over the traced processes (absent when the section is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sched: Option<SchedReport>,
    /// Children added to the trace by `--follow` in the window (the first
    /// [`events::MAX_FOLLOWED_LISTED`]), and how many more.
    pub followed_pids: Vec<u32>,
    pub followed_pids_omitted: u64,
    /// Counts of process-life events in the window.
    pub life: LifeCounts,
    /// The events themselves, oldest first, at most [`MAX_EVENTS_LISTED`].
    pub events: Vec<ProcessEvent>,
    /// Events in the window beyond [`MAX_EVENTS_LISTED`] (counted in `life`, not listed).
    pub events_omitted: u64,
    /// Crash signals of traced threads in the window, oldest first (at most
    /// [`events::MAX_CRASHES_KEPT`]), each with whether it ended its process.
    pub crashes: Vec<CrashReport>,
    pub crashes_omitted: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandExit>,
    /// Memory section (when selected): all traced processes together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<memory::MemoryReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fds: Option<memory::FdReport>,
    /// OOM kills on the whole machine in the window (when the memory section is selected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<Vec<memory::OomReport>>,
    /// Figures beyond the run's own baseline: in an interval, those of the window; in the
    /// final report, each of the run's once (see [`anomaly`]); set by [`Report::judge`].
    pub anomalies: Vec<anomaly::Anomaly>,
    /// In the final report, the run's anomalies before those listed.
    pub anomalies_omitted: u64,
    /// Event-loop threads (those that wait in epoll/poll/select), the longest iteration
    /// first, at most [`loops::MAX_LOOPS_LISTED`]; and how many more.
    pub loops: Vec<loops::LoopRow>,
    pub loops_omitted: u64,
}

/// How syscall latency was measured (see [`SyscallTiming`]); counts and errors are exact
/// either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LatencyTiming {
    /// Every call timed (`--exact-latency`).
    pub exact: bool,
    /// Sampled mode: calls per thread per scheduler tick timed before sampling starts.
    pub budget_per_tick: u32,
    /// Beyond it, one call in this many is timed and counted this many times (1 when
    /// exact). Calls that block are always timed.
    pub one_in: u32,
}

impl From<SyscallTiming> for LatencyTiming {
    fn from(t: SyscallTiming) -> Self {
        Self {
            exact: t.every == 1,
            budget_per_tick: t.budget,
            one_in: t.every,
        }
    }
}

/// The syscall table a call's number belongs to. Samples number i386 calls (made through
/// the 32-bit entry: a 32-bit program, or `int 0x80`) `SYSCALL_SLOTS + nr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Abi {
    X86_64,
    I386,
}

impl Abi {
    /// Its name as JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::I386 => "i386",
        }
    }

    /// The ABI and own number of a sample's syscall number.
    pub fn split(nr: u32) -> (Abi, u32) {
        if nr >= SYSCALL_SLOTS {
            (Abi::I386, nr - SYSCALL_SLOTS)
        } else {
            (Abi::X86_64, nr)
        }
    }
}

/// Names used in reports; kept as functions so the model stays testable without tables.
/// `nr` is a sample's number (see [`Abi`]).
pub fn syscall_name(nr: u32) -> String {
    let (abi, own) = Abi::split(nr);
    if own == SYSCALL_OTHER {
        return "other".into();
    }
    let name = match abi {
        Abi::X86_64 => syscalls::Sysno::new(own as usize).map(|s| s.name()),
        Abi::I386 => syscalls::x86::Sysno::new(own as usize).map(|s| s.name()),
    };
    match name {
        Some(n) => n.to_string(),
        None => format!("syscall_{own}"),
    }
}

pub fn errno_name(errno: u32) -> String {
    match syscalls::Errno::new(errno as i32).name() {
        Some(n) => n.to_string(),
        None => format!("E{errno}"),
    }
}

fn rows(counts: &BTreeMap<u32, SyscallCounts>, secs: f64) -> (Vec<SyscallRow>, Totals) {
    let mut rows: Vec<SyscallRow> = counts
        .iter()
        .filter(|(_, c)| c.calls > 0)
        .map(|(&nr, c)| (nr, c, c.timed > 0))
        .map(|(nr, c, known)| SyscallRow {
            idle_wait: idle_wait(&syscall_name(nr)),
            name: syscall_name(nr),
            nr: Abi::split(nr).1,
            abi: Abi::split(nr).0,
            calls: c.calls,
            calls_per_s: rate(c.calls, secs),
            errors: c.errors,
            errnos: c.errnos.iter().map(|(e, n)| (errno_name(*e), *n)).collect(),
            timed: c.timed,
            total_ns: known.then(|| c.estimated_total_ns()),
            avg_ns: known.then(|| c.estimated_total_ns() / c.calls),
            p50_ns: known.then(|| c.quantile(0.50)),
            p99_ns: known.then(|| c.quantile(0.99)),
            max_ns: known.then_some(c.max_ns),
            max_is_bound: known && c.max_bound,
            hist: c.hist.clone(),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.total_ns
            .unwrap_or(0)
            .cmp(&a.total_ns.unwrap_or(0))
            .then(b.calls.cmp(&a.calls))
            .then(a.abi.cmp(&b.abi))
            .then(a.nr.cmp(&b.nr))
    });
    let mut t = Totals::default();
    for r in &rows {
        t.calls += r.calls;
        t.errors += r.errors;
        t.timed += r.timed;
        t.total_ns += r.total_ns.unwrap_or(0);
    }
    t.calls_per_s = rate(t.calls, secs);
    (rows, t)
}

pub fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// What a report is about, beyond the numbers of its window.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// `targets[slot]` names the process of each slot.
    pub targets: &'a [ProcessInfo],
    /// Monotonic time at which tracing started; event times are relative to it.
    pub t0_ns: u64,
    /// Wall clock minus monotonic clock, in ns, read once when tracing started: every
    /// wall-clock time of the run is its monotonic time plus this.
    pub wall_offset_ns: i128,
    /// List threads in the scheduling section (`--threads`).
    pub threads: bool,
    /// How the kernel side times syscalls.
    pub timing: SyscallTiming,
    /// Processes listed in full in `per_process` (`--processes`).
    pub list_processes: usize,
    /// An event loop's iteration this long or longer is a stall (`--stall`; 0: none).
    pub stall_ns: u64,
}

impl Context<'_> {
    /// The wall-clock time of a monotonic one.
    pub fn wall(&self, mono_ns: u64) -> WallClock {
        let ns = (mono_ns as i128 + self.wall_offset_ns).max(0);
        WallClock(SystemTime::UNIX_EPOCH + Duration::from_nanos(ns as u64))
    }
}

/// What one report covers: its bounds and what happened between them.
#[derive(Clone, Copy, Debug)]
pub struct Window<'a> {
    pub kind: ReportKind,
    /// Bounds, CLOCK_MONOTONIC ns: `end_ns` is when `counts` were read.
    pub start_ns: u64,
    pub end_ns: u64,
    /// What was counted in the window (for `final`, since tracing started).
    pub counts: &'a Sample,
    /// The events read in the window.
    pub events: &'a EventLog,
    /// The memory section's readings at the window's end and at its start (None at the
    /// start of the run), when the section is selected.
    pub memory: Option<(&'a memory::MemSample, Option<&'a memory::MemSample>)>,
    /// How a launched command ended (final report).
    pub command: Option<CommandExit>,
}

impl Window<'_> {
    pub fn secs(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9
    }
}

impl Report {
    /// Builds the report of a window.
    pub fn build(w: &Window, ctx: &Context) -> Report {
        let (targets, t0_ns) = (ctx.targets, ctx.t0_ns);
        let (counts, events, secs) = (w.counts, w.events, w.secs());
        let mut merged: BTreeMap<u32, SyscallCounts> = BTreeMap::new();
        let mut per_slot: Vec<BTreeMap<u32, SyscallCounts>> = vec![BTreeMap::new(); targets.len()];
        for (&(slot, nr), c) in &counts.syscalls {
            merged.entry(nr).or_default().add(c);
            if let Some(m) = per_slot.get_mut(slot as usize) {
                m.entry(nr).or_default().add(c);
            }
        }
        let (syscalls, totals) = rows(&merged, secs);
        let slot_sched = |slot: usize| {
            counts.sched.as_ref().map(|m| {
                SchedReport::of(
                    m.get(&(slot as u32)).unwrap_or(&SchedCounts::default()),
                    secs,
                )
            })
        };
        let processes = targets
            .iter()
            .zip(&per_slot)
            .enumerate()
            .map(|(slot, (p, m))| {
                let (syscalls, totals) = rows(m, secs);
                let sched = slot_sched(slot);
                ProcessReport {
                    pid: p.pid,
                    comm: p.comm.clone(),
                    selector: p.selector_label().map(str::to_string),
                    totals,
                    syscalls,
                    sched,
                    memory: None,
                    fds: None,
                    anatomy: None,
                    members: Vec::new(),
                    life: events
                        .per_slot
                        .get(&(slot as u32))
                        .copied()
                        .unwrap_or_default(),
                    crashes_by_signal: events
                        .crash_counts
                        .iter()
                        .filter(|((s, _), _)| *s == slot as u32)
                        .map(|((_, sig), n)| (events::signal_name(*sig as i32), *n))
                        .collect(),
                }
            })
            .collect();
        let sched = counts.sched.as_ref().map(|m| {
            let mut all = SchedCounts::default();
            m.values().for_each(|c| all.add(c));
            let mut r = SchedReport::of(&all, secs);
            if ctx.threads {
                r.threads = counts
                    .threads
                    .iter()
                    .map(|(tid, t)| ThreadRow::of(*tid, t))
                    .collect();
                r.threads
                    .sort_by(|a, b| b.on_cpu_ns.cmp(&a.on_cpu_ns).then(a.tid.cmp(&b.tid)));
                r.threads_dropped = counts.threads_dropped;
                let cond = counts
                    .threads
                    .iter()
                    .map(|(tid, t)| (*tid, t.pool_addr))
                    .collect();
                let loops = counts
                    .loops
                    .iter()
                    .filter(|(_, l)| l.iterations > 0 || l.open_ns > 0)
                    .map(|(tid, _)| *tid)
                    .collect();
                r.pools = roles::assign(&mut r.threads, &cond, &loops);
                for t in r.threads.iter_mut() {
                    t.syscalls = sched::thread_syscalls(&counts.thread_calls, t.tid, t.pid);
                }
            }
            r
        });
        let mut r = Report {
            schema_version: SCHEMA_VERSION,
            kind: w.kind,
            start: ctx.wall(w.start_ns),
            end: ctx.wall(w.end_ns),
            start_mono_ns: w.start_ns,
            end_mono_ns: w.end_ns,
            duration_s: secs,
            pids: targets
                .iter()
                .filter(|p| p.selector_label().is_none())
                .map(|p| p.pid)
                .collect(),
            syscalls,
            totals,
            latency_timing: ctx.timing.into(),
            lost_events: counts.drops.total(),
            drops: counts.drops,
            processes,
            per_process: procs::ProcsReport::build(
                &counts.procs,
                ctx.list_processes,
                targets,
                secs,
            ),
            sched,
            followed_pids: events.followed.clone(),
            followed_pids_omitted: events.followed_omitted,
            life: events.life,
            events: events
                .listed
                .iter()
                .map(|&e| ProcessEvent::from_raw(e, t0_ns))
                .collect(),
            events_omitted: events.omitted,
            crashes: events
                .crashes
                .iter()
                .filter_map(|c| CrashReport::of(c, t0_ns, w.kind == ReportKind::Final))
                .collect(),
            crashes_omitted: events.crashes_omitted,
            command: w.command,
            memory: None,
            fds: None,
            oom_kills: None,
            anomalies: Vec::new(),
            anomalies_omitted: 0,
            loops: Vec::new(),
            loops_omitted: 0,
        };
        (r.loops, r.loops_omitted) = loops::rows(&counts.loops, secs, ctx.stall_ns);
        if let Some((now, before)) = w.memory {
            r.add_memory(now, before, events, t0_ns);
        }
        r
    }

    /// Judges the report against the run's baseline: an interval's figures are added to it
    /// and those beyond it listed; the final report lists the run's anomalies.
    pub fn judge(&mut self, d: &mut anomaly::Detector) {
        match self.kind {
            ReportKind::Interval => self.anomalies = d.observe(self),
            ReportKind::Final => (self.anomalies, self.anomalies_omitted) = d.episodes(),
        }
    }

    /// The memory, descriptor and OOM-kill parts: each process's window, and their sum.
    fn add_memory(
        &mut self,
        now: &memory::MemSample,
        before: Option<&memory::MemSample>,
        events: &EventLog,
        t0_ns: u64,
    ) {
        let mut mems = Vec::new();
        let mut fds = Vec::new();
        for (slot, p) in now.procs.iter().enumerate() {
            let b = before.and_then(|b| b.procs.get(slot));
            let m = memory::memory_window(&p.memory, b.map(|b| &b.memory));
            let f = memory::fd_window(&p.fds, b.map(|b| &b.fds));
            if let Some(r) = self.processes.get_mut(slot) {
                r.memory = Some(m.clone());
                r.fds = Some(f.clone());
                r.anatomy = p.anatomy.clone();
            }
            mems.push(m);
            fds.push(f);
        }
        for m in &now.members {
            if let Some(r) = self.processes.get_mut(m.slot as usize) {
                r.members.push(m.clone());
            }
        }
        self.memory = memory::merge_memory(&mems);
        self.fds = memory::merge_fds(&fds);
        self.oom_kills = Some(memory::oom_kills(&events.oom_kills, t0_ns, &|id| {
            now.cgroups.get(&id).cloned()
        }));
    }
}

/// A report context for tests: no threads listed, time starting at 0 on both clocks.
#[cfg(test)]
pub fn ctx(targets: &[ProcessInfo]) -> Context<'_> {
    Context {
        targets,
        t0_ns: 0,
        wall_offset_ns: 0,
        threads: false,
        timing: SyscallTiming::EXACT,
        list_processes: 10,
        stall_ns: 100_000_000,
    }
}

/// A window for tests: `counts` over the first `secs` seconds, no events.
#[cfg(test)]
pub fn window(kind: ReportKind, counts: &Sample, secs: f64) -> Window<'_> {
    static NONE: std::sync::LazyLock<EventLog> = std::sync::LazyLock::new(EventLog::default);
    Window {
        kind,
        start_ns: 0,
        end_ns: (secs * 1e9) as u64,
        counts,
        events: &NONE,
        memory: None,
        command: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts_of(latencies: &[u64]) -> SyscallCounts {
        let mut c = SyscallCounts::default();
        for &l in latencies {
            c.calls += 1;
            c.timed += 1;
            c.total_ns += l;
            c.max_ns = c.max_ns.max(l);
            c.hist[hist::bucket(l)] += 1;
        }
        c
    }

    #[test]
    fn latency_timing_says_how_calls_were_timed() {
        assert_eq!(
            LatencyTiming::from(SyscallTiming::EXACT),
            LatencyTiming {
                exact: true,
                budget_per_tick: 0,
                one_in: 1
            }
        );
        assert_eq!(
            LatencyTiming::from(SyscallTiming::SAMPLED),
            LatencyTiming {
                exact: false,
                budget_per_tick: 32,
                one_in: 16
            }
        );
    }

    #[test]
    fn sampled_totals_stay_between_the_latencies_measured() {
        // 5 calls, two timed: one within the tick's budget at 1 us (weight 1), one sampled
        // beyond it at 20 us (weight 16). The weighted sum over the calls would put the
        // average at 64 us, above anything measured.
        let mut c = SyscallCounts {
            calls: 5,
            timed: 2,
            total_ns: 16 * 20_000 + 1_000,
            max_ns: 20_000,
            ..Default::default()
        };
        c.hist[hist::bucket(20_000)] += 16;
        c.hist[hist::bucket(1_000)] += 1;
        let total = c.estimated_total_ns();
        assert_eq!(total, 321_000 * 5 / 17);
        let avg = total / c.calls;
        assert!(1_000 <= avg && avg <= c.max_ns, "{avg}");
        // Every call timed: the kernel's sum as it is.
        let exact = counts_of(&[100, 200, 300]);
        assert_eq!(exact.estimated_total_ns(), 600);
    }

    #[test]
    fn timed_calls_add_up_and_subtract() {
        let mut a = counts_of(&[100, 200]);
        a.calls += 30; // untimed calls of a sampled thread
        let mut b = a.clone();
        b.add(&counts_of(&[300]));
        b.calls += 15;
        let d = b.since(&a);
        assert_eq!((d.calls, d.timed), (16, 1));
        assert_eq!((b.calls, b.timed), (48, 3));
    }

    #[test]
    fn percentiles_land_in_the_right_bucket() {
        // 98 fast calls around 1 us, two slow ones of 1 ms.
        let mut lat = vec![1000u64; 98];
        lat.extend([1_000_000, 1_000_000]);
        let c = counts_of(&lat);
        let p50 = c.quantile(0.5);
        let p99 = c.quantile(0.99);
        assert!((896..=1024).contains(&p50), "p50 {p50}");
        assert!((786_432..=1_000_000).contains(&p99), "p99 {p99}");
        assert_eq!(c.quantile(1.0), c.max_ns.min(c.quantile(1.0)));
    }

    #[test]
    fn percentile_error_is_bounded_for_uniform_latencies() {
        let lat: Vec<u64> = (1..=10_000u64).map(|i| i * 100).collect();
        let c = counts_of(&lat);
        for q in [0.5, 0.9, 0.99] {
            let exact = lat[((q * lat.len() as f64).ceil() as usize) - 1] as f64;
            let got = c.quantile(q) as f64;
            assert!(
                (got - exact).abs() / exact < 0.13,
                "q={q} exact={exact} got={got}"
            );
        }
    }

    #[test]
    fn empty_histogram_gives_zero() {
        assert_eq!(SyscallCounts::default().quantile(0.99), 0);
    }

    #[test]
    fn since_subtracts_and_bounds_the_interval_max() {
        let before = counts_of(&[100, 200, 5_000_000]);
        let mut after = before.clone();
        after.add(&counts_of(&[300, 400]));
        let d = after.since(&before);
        assert_eq!((d.calls, d.total_ns), (2, 700));
        // The running max (5 ms) is from before the interval: the interval's max is the top
        // of the highest bucket it filled, not 5 ms.
        assert!(d.max_ns >= 400 && d.max_ns < 512, "{}", d.max_ns);
        assert!(d.max_bound, "a bucket's bound, not a measurement");
        let mut later = after.clone();
        later.add(&counts_of(&[9_000_000]));
        let d = later.since(&after);
        assert_eq!((d.max_ns, d.max_bound), (9_000_000, false));
    }

    #[test]
    fn rows_without_a_timed_call_have_no_latency() {
        let mut s = Sample::default();
        let mut untimed = counts_of(&[]);
        untimed.calls = 3;
        s.syscalls.insert((0, 32), untimed);
        s.syscalls.insert((0, 0), counts_of(&[10; 2]));
        let targets = [ProcessInfo {
            pid: 10,
            comm: "a".into(),
        }];
        let r = Report::build(&window(ReportKind::Final, &s, 1.0), &ctx(&targets));
        let dup = r.syscalls.iter().find(|r| r.name == "dup").unwrap();
        assert_eq!((dup.calls, dup.timed), (3, 0));
        assert_eq!(
            (dup.total_ns, dup.avg_ns, dup.p50_ns, dup.p99_ns, dup.max_ns),
            (None, None, None, None, None)
        );
        let read = r.syscalls.iter().find(|r| r.name == "read").unwrap();
        assert_eq!((read.avg_ns, read.max_ns), (Some(10), Some(10)));
        assert_eq!(r.totals.total_ns, 20);
    }

    #[test]
    fn sample_since_drops_idle_syscalls_and_errnos() {
        let mut a = Sample::default();
        let mut c = counts_of(&[10, 20]);
        c.errors = 1;
        c.errnos.insert(2, 1);
        a.syscalls.insert((0, 2), c.clone());
        a.syscalls.insert((0, 39), counts_of(&[5]));
        let mut b = a.clone();
        b.syscalls.get_mut(&(0, 2)).unwrap().add(&counts_of(&[30]));
        b.drops.errno_map_full = 3;
        let d = b.since(&a);
        assert_eq!(d.syscalls.len(), 1);
        let row = &d.syscalls[&(0, 2)];
        assert_eq!((row.calls, row.errors), (1, 0));
        assert!(row.errnos.is_empty());
        assert_eq!(d.drops.total(), 3);
    }

    #[test]
    fn report_merges_processes_sorts_by_time_and_totals() {
        let mut s = Sample::default();
        let mut openat = counts_of(&[1000; 4]);
        openat.errors = 3;
        openat.errnos.insert(2, 3);
        s.syscalls.insert((0, 257), openat);
        s.syscalls.insert((0, 0), counts_of(&[10; 10]));
        s.syscalls.insert((1, 0), counts_of(&[10; 5]));
        let targets = [
            ProcessInfo {
                pid: 10,
                comm: "a".into(),
            },
            ProcessInfo {
                pid: 11,
                comm: "b".into(),
            },
        ];
        let r = Report::build(&window(ReportKind::Final, &s, 2.0), &ctx(&targets));
        assert_eq!(r.pids, vec![10, 11]);
        let names: Vec<_> = r.syscalls.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["openat", "read"]);
        assert_eq!(r.syscalls[1].calls, 15);
        assert_eq!(r.syscalls[1].calls_per_s, 7.5);
        assert_eq!(r.syscalls[0].errnos.get("ENOENT"), Some(&3));
        assert_eq!(r.syscalls[0].avg_ns, Some(1000));
        assert_eq!(r.totals.calls, 19);
        assert_eq!(r.totals.errors, 3);
        assert_eq!(r.totals.total_ns, 4150);
        assert_eq!(r.processes[1].totals.calls, 5);
        assert_eq!(r.processes[0].syscalls.len(), 2);
    }

    #[test]
    fn windows_tile_on_both_clocks_and_add_up_to_the_run() {
        let targets = [ProcessInfo {
            pid: 10,
            comm: "a".into(),
        }];
        let mut ctx = ctx(&targets);
        ctx.t0_ns = 5_000_000_000;
        ctx.wall_offset_ns = 1_796_092_200_123_456_789 - 5_000_000_000;
        // Cumulative samples: at the start, at three readings, the last one ending the run.
        let at = [
            5_000_000_000u64,
            6_000_001_234,
            7_000_000_099,
            7_300_000_000,
        ];
        let samples: Vec<Sample> = [0u64, 7, 19, 20]
            .iter()
            .map(|&n| {
                let mut s = Sample::default();
                let mut c = counts_of(&vec![100; n as usize]);
                c.calls += 2 * n; // untimed calls too
                s.syscalls.insert((0, 110), c);
                s
            })
            .collect();
        let report = |kind, i: usize, j: usize, counts: &Sample| {
            let w = Window {
                kind,
                start_ns: at[i],
                end_ns: at[j],
                counts,
                events: &EventLog::default(),
                memory: None,
                command: None,
            };
            Report::build(&w, &ctx)
        };
        let intervals: Vec<Report> = (0..3)
            .map(|k| {
                let counts = samples[k + 1].since(&samples[k]);
                report(ReportKind::Interval, k, k + 1, &counts)
            })
            .collect();
        let fin = report(ReportKind::Final, 0, 3, &samples[3]);
        for r in intervals.iter().chain([&fin]) {
            assert_eq!(r.schema_version, 2);
            assert_eq!(r.duration_s, (r.end_mono_ns - r.start_mono_ns) as f64 / 1e9);
            // The wall clock keeps the monotonic clock's intervals, to the nanosecond.
            let wall = r.end.0.duration_since(r.start.0).unwrap();
            assert_eq!(wall.as_nanos(), (r.end_mono_ns - r.start_mono_ns) as u128);
        }
        for pair in intervals.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert_eq!(pair[0].end_mono_ns, pair[1].start_mono_ns);
        }
        let last = intervals.last().unwrap();
        assert_eq!((intervals[0].start, last.end), (fin.start, fin.end));
        assert_eq!(
            (intervals[0].start_mono_ns, last.end_mono_ns),
            (5_000_000_000, 7_300_000_000)
        );
        assert_eq!(
            fin.start.0.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::new(1_796_092_200, 123_456_789)
        );
        let calls: Vec<u64> = intervals.iter().map(|r| r.totals.calls).collect();
        assert_eq!(calls, [21, 36, 3]);
        assert_eq!(calls.iter().sum::<u64>(), fin.totals.calls);
        assert_eq!(fin.syscalls[0].calls, 60);
    }

    #[test]
    fn names_come_from_the_tables() {
        assert_eq!(syscall_name(0), "read");
        assert_eq!(syscall_name(257), "openat");
        assert_eq!(syscall_name(SYSCALL_OTHER), "other");
        // i386 numbers, after the x86_64 ones: 64 is getppid there, semget here.
        assert_eq!(syscall_name(64), "semget");
        assert_eq!(syscall_name(SYSCALL_SLOTS + 64), "getppid");
        assert_eq!(syscall_name(SYSCALL_SLOTS + 192), "mmap2");
        assert_eq!(syscall_name(SYSCALL_SLOTS + SYSCALL_OTHER), "other");
        assert_eq!(Abi::split(SYSCALL_SLOTS + 6), (Abi::I386, 6));
        assert_eq!(Abi::split(6), (Abi::X86_64, 6));
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_name(512), "ERESTARTSYS");
        assert_eq!(errno_name(4000), "E4000");
    }
}
