//! Scheduling numbers: context switches, run-queue latency, on-CPU / runnable / blocked
//! time, per process and per thread. Pure: counters in, report rows out.
use serde::Serialize;
use tracer_common::{SchedStats, block_cause, hist, sched_state};

use super::{
    blocked::BlockedBy,
    interval_max, larger_max, percentile, rate,
    roles::{PoolRow, Role},
};

/// Scheduling counters of a thread or a process, cumulative since tracing started,
/// including the interval still open when they were read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedCounts {
    pub voluntary: u64,
    pub involuntary: u64,
    pub on_cpu_ns: u64,
    pub runq_ns: u64,
    pub blocked_ns: u64,
    pub runq_count: u64,
    pub runq_max_ns: u64,
    /// `runq_max_ns` is an upper bound, not a measurement (see [`interval_max`]).
    pub runq_max_bound: bool,
    pub runq_hist: Vec<u64>,
    /// `blocked_ns` by cause (`block_cause` indices).
    pub blocked_by: [u64; block_cause::COUNT],
}

impl Default for SchedCounts {
    fn default() -> Self {
        Self {
            voluntary: 0,
            involuntary: 0,
            on_cpu_ns: 0,
            runq_ns: 0,
            blocked_ns: 0,
            runq_count: 0,
            runq_max_ns: 0,
            runq_max_bound: false,
            runq_hist: vec![0; hist::BUCKETS],
            blocked_by: [0; block_cause::COUNT],
        }
    }
}

impl SchedCounts {
    /// Adds counters as the kernel keeps them.
    pub fn add_raw(&mut self, s: &SchedStats) {
        self.add(&SchedCounts {
            voluntary: s.voluntary,
            involuntary: s.involuntary,
            on_cpu_ns: s.on_cpu_ns,
            runq_ns: s.runq_ns,
            blocked_ns: s.blocked_ns,
            runq_count: s.runq_count,
            runq_max_ns: s.runq_max_ns,
            runq_max_bound: false,
            runq_hist: s.runq_hist.to_vec(),
            blocked_by: s.blocked_by,
        });
    }

    pub fn add(&mut self, o: &Self) {
        self.voluntary += o.voluntary;
        self.involuntary += o.involuntary;
        self.on_cpu_ns += o.on_cpu_ns;
        self.runq_ns += o.runq_ns;
        self.blocked_ns += o.blocked_ns;
        self.runq_count += o.runq_count;
        (self.runq_max_ns, self.runq_max_bound) = larger_max(
            (self.runq_max_ns, self.runq_max_bound),
            (o.runq_max_ns, o.runq_max_bound),
        );
        for (a, b) in self.runq_hist.iter_mut().zip(&o.runq_hist) {
            *a += b;
        }
        for (a, b) in self.blocked_by.iter_mut().zip(&o.blocked_by) {
            *a += b;
        }
    }

    /// Adds the interval a thread has been in `state` since `since_ns`, up to `now_ns`: the
    /// kernel only closes an interval when the state changes. `cause`: what a blocked
    /// thread waits in.
    pub fn add_open(&mut self, state: u32, cause: u32, since_ns: u64, now_ns: u64) {
        if since_ns == 0 || now_ns <= since_ns {
            return;
        }
        let open = now_ns - since_ns;
        match state {
            sched_state::RUNNING => self.on_cpu_ns += open,
            sched_state::RUNNABLE => self.runq_ns += open,
            sched_state::BLOCKED => {
                self.blocked_ns += open;
                let c = (cause as usize).min(block_cause::UNKNOWN as usize);
                self.blocked_by[c] += open;
            }
            _ => {}
        }
    }

    /// What happened since `prev`; the interval's max run-queue wait is bounded by the
    /// highest histogram bucket it filled, as for syscall latency.
    pub fn since(&self, prev: &Self) -> Self {
        let runq_hist: Vec<u64> = self
            .runq_hist
            .iter()
            .zip(&prev.runq_hist)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let (runq_max_ns, runq_max_bound) =
            interval_max(&runq_hist, self.runq_max_ns, prev.runq_max_ns);
        Self {
            voluntary: self.voluntary.saturating_sub(prev.voluntary),
            involuntary: self.involuntary.saturating_sub(prev.involuntary),
            on_cpu_ns: self.on_cpu_ns.saturating_sub(prev.on_cpu_ns),
            runq_ns: self.runq_ns.saturating_sub(prev.runq_ns),
            blocked_ns: self.blocked_ns.saturating_sub(prev.blocked_ns),
            runq_count: self.runq_count.saturating_sub(prev.runq_count),
            runq_max_ns,
            runq_max_bound,
            runq_hist,
            blocked_by: std::array::from_fn(|i| {
                self.blocked_by[i].saturating_sub(prev.blocked_by[i])
            }),
        }
    }

    /// On-CPU + waiting for a CPU + blocked: the time the thread existed in the window.
    pub fn wall_ns(&self) -> u64 {
        self.on_cpu_ns + self.runq_ns + self.blocked_ns
    }
}

/// Run-queue latency: from a wakeup or a preemption until the thread runs again.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunQueue {
    /// Waits measured (closed in the window).
    pub count: u64,
    /// Time spent runnable but not running, including a wait still open.
    pub total_ns: u64,
    /// Of the waits measured; None when there were none.
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub max_ns: Option<u64>,
    /// `max_ns` is the upper bound of a histogram bucket, not a measurement.
    pub max_is_bound: bool,
    /// The waits' histogram (`tracer_common::hist` buckets): for sinks that export
    /// distributions (metrics).
    #[serde(skip)]
    pub hist: Vec<u64>,
}

impl RunQueue {
    fn of(c: &SchedCounts) -> Self {
        let any = c.runq_count > 0;
        Self {
            count: c.runq_count,
            total_ns: c.runq_ns,
            p50_ns: any.then(|| percentile(&c.runq_hist, 0.50).min(c.runq_max_ns)),
            p99_ns: any.then(|| percentile(&c.runq_hist, 0.99).min(c.runq_max_ns)),
            max_ns: any.then_some(c.runq_max_ns),
            max_is_bound: any && c.runq_max_bound,
            hist: c.runq_hist.clone(),
        }
    }
}

/// The scheduling section of a report, for one process or merged.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SchedReport {
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    pub voluntary_per_s: f64,
    pub involuntary_per_s: f64,
    pub on_cpu_ns: u64,
    /// Waiting for a CPU + blocked.
    pub off_cpu_ns: u64,
    pub blocked_ns: u64,
    /// `blocked_ns` by what the threads waited in.
    pub blocked_by: BlockedBy,
    pub runqueue: RunQueue,
    /// Per thread (with `--threads`), busiest first.
    pub threads: Vec<ThreadRow>,
    /// With `--threads`: pools of threads waiting for work on one condition variable,
    /// the most utilised first (see [`super::roles`]).
    pub pools: Vec<PoolRow>,
    /// Ended threads left out of `threads` since tracing started (beyond the 1000 busiest
    /// ended ones kept): cumulative.
    pub threads_dropped: u64,
}

impl SchedReport {
    pub fn of(c: &SchedCounts, secs: f64) -> Self {
        Self {
            voluntary_switches: c.voluntary,
            involuntary_switches: c.involuntary,
            voluntary_per_s: rate(c.voluntary, secs),
            involuntary_per_s: rate(c.involuntary, secs),
            on_cpu_ns: c.on_cpu_ns,
            off_cpu_ns: c.runq_ns + c.blocked_ns,
            blocked_ns: c.blocked_ns,
            blocked_by: BlockedBy::of(&c.blocked_by),
            runqueue: RunQueue::of(c),
            threads: Vec::new(),
            pools: Vec::new(),
            threads_dropped: 0,
        }
    }
}

/// A thread as sampled: who it is and its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadCounts {
    pub slot: u32,
    pub pid: u32,
    pub comm: String,
    pub alive: bool,
    pub counts: SchedCounts,
    /// The futex word that tells its pool: of its longest condition wait (0: none; see
    /// [`super::roles::pool_word`]).
    pub pool_addr: u64,
    /// On-CPU time since its latest syscall, as of the reading (see [`SilentRuns`]).
    pub cpu_without_syscalls_ns: u64,
}

/// How long each thread has run on a CPU without a syscall (a CPU-bound thread that
/// never enters the kernel: a busy loop, a long computation), from its on-CPU time and its
/// own syscall count at each reading: the on-CPU time gained since the first reading at
/// which its count stood where it stands. Within a reading's interval: a call made just
/// after a reading counts from the next.
#[derive(Clone, Debug, Default)]
pub struct SilentRuns {
    /// By tid: (its process, its calls, its on-CPU time when they were last seen to change).
    seen: std::collections::HashMap<u32, (u32, u64, u64)>,
}

impl SilentRuns {
    /// Sets each thread's `cpu_without_syscalls_ns` from cumulative readings.
    pub fn observe(
        &mut self,
        threads: &mut std::collections::BTreeMap<u32, ThreadCounts>,
        calls: &std::collections::BTreeMap<(u32, u32), ThreadCallCounts>,
    ) {
        let mut seen = std::collections::HashMap::with_capacity(threads.len());
        for (tid, t) in threads.iter_mut() {
            let n: u64 = calls
                .range((*tid, 0)..=(*tid, u32::MAX))
                .filter(|(_, c)| c.pid == t.pid)
                .map(|(_, c)| c.calls)
                .sum();
            let cpu = t.counts.on_cpu_ns;
            let since = match self.seen.get(tid) {
                Some(&(pid, was, at)) if pid == t.pid && was == n => at,
                _ => cpu,
            };
            t.cpu_without_syscalls_ns = cpu.saturating_sub(since);
            seen.insert(*tid, (t.pid, n, since));
        }
        self.seen = seen;
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadRow {
    pub tid: u32,
    pub pid: u32,
    pub comm: String,
    /// Still running when the report was made.
    pub alive: bool,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    pub on_cpu_ns: u64,
    pub runqueue_ns: u64,
    pub blocked_ns: u64,
    pub blocked_by: BlockedBy,
    /// on_cpu + runqueue + blocked: how long the thread existed in the window.
    pub wall_ns: u64,
    pub runqueue: RunQueue,
    /// What it does, as its behaviour shows (see [`super::roles`]).
    pub role: Role,
    /// Its own syscall table (with the syscalls section), the most time first.
    pub syscalls: Vec<ThreadSyscall>,
    /// On-CPU time since its latest syscall, at the window's end (instant; with the
    /// syscalls section): a CPU-bound thread that does not enter the kernel.
    pub cpu_without_syscalls_ns: u64,
}

/// A thread's counts of one syscall, cumulative (`tracer_common::threads`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadCallCounts {
    pub pid: u32,
    pub calls: u64,
    pub errors: u64,
    pub total_ns: u64,
}

impl ThreadCallCounts {
    /// Since `prev` (the same row's earlier reading; another process's thread under the
    /// same id counts from zero).
    pub fn since(&self, prev: Option<&Self>) -> Self {
        match prev.filter(|p| p.pid == self.pid && p.calls <= self.calls) {
            Some(p) => Self {
                pid: self.pid,
                calls: self.calls - p.calls,
                errors: self.errors.saturating_sub(p.errors),
                total_ns: self.total_ns.saturating_sub(p.total_ns),
            },
            None => *self,
        }
    }
}

/// A row of a thread's own syscall table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadSyscall {
    pub name: String,
    pub calls: u64,
    pub errors: u64,
    /// Estimated like the process table's when calls are sampled.
    pub total_ns: u64,
    pub avg_ns: u64,
}

/// Thread `tid`'s (of `pid`) syscall table from the per-thread counts.
pub fn thread_syscalls(
    calls: &std::collections::BTreeMap<(u32, u32), ThreadCallCounts>,
    tid: u32,
    pid: u32,
) -> Vec<ThreadSyscall> {
    let mut rows: Vec<ThreadSyscall> = calls
        .range((tid, 0)..=(tid, u32::MAX))
        .filter(|(_, c)| c.pid == pid && c.calls > 0)
        .map(|(&(_, nr), c)| ThreadSyscall {
            name: match super::Abi::split(nr).0 {
                super::Abi::X86_64 => super::syscall_name(nr),
                super::Abi::I386 => format!("{} (i386)", super::syscall_name(nr)),
            },
            calls: c.calls,
            errors: c.errors,
            total_ns: c.total_ns,
            avg_ns: c.total_ns / c.calls,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.total_ns
            .cmp(&a.total_ns)
            .then(b.calls.cmp(&a.calls))
            .then(a.name.cmp(&b.name))
    });
    rows
}

impl ThreadRow {
    pub fn of(tid: u32, t: &ThreadCounts) -> Self {
        let c = &t.counts;
        Self {
            tid,
            pid: t.pid,
            comm: t.comm.clone(),
            alive: t.alive,
            voluntary_switches: c.voluntary,
            involuntary_switches: c.involuntary,
            on_cpu_ns: c.on_cpu_ns,
            runqueue_ns: c.runq_ns,
            blocked_ns: c.blocked_ns,
            blocked_by: BlockedBy::of(&c.blocked_by),
            wall_ns: c.wall_ns(),
            runqueue: RunQueue::of(c),
            role: Role::Other,
            syscalls: Vec::new(),
            cpu_without_syscalls_ns: t.cpu_without_syscalls_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_intervals_go_to_their_state() {
        let mut c = SchedCounts::default();
        let u = block_cause::UNKNOWN;
        c.add_open(sched_state::RUNNING, u, 100, 400);
        c.add_open(sched_state::RUNNABLE, u, 100, 150);
        c.add_open(sched_state::BLOCKED, u, 0, 150); // unknown start: nothing
        c.add_open(sched_state::BLOCKED, u, 500, 400); // clock before since: nothing
        assert_eq!((c.on_cpu_ns, c.runq_ns, c.blocked_ns), (300, 50, 0));
        c.add_open(sched_state::BLOCKED, block_cause::LOCK, 100, 170);
        assert_eq!(c.blocked_ns, 70);
        assert_eq!(c.blocked_by[block_cause::LOCK as usize], 70);
        assert_eq!(c.wall_ns(), 420);
    }

    #[test]
    fn report_splits_off_cpu_and_reads_percentiles() {
        let mut s = SchedStats {
            voluntary: 10,
            involuntary: 4,
            on_cpu_ns: 1_000,
            runq_ns: 7_000,
            blocked_ns: 2_000,
            runq_count: 4,
            runq_max_ns: 4_000,
            ..Default::default()
        };
        for w in [1_000u64, 1_000, 1_000, 4_000] {
            s.runq_hist[hist::bucket(w)] += 1;
        }
        let mut c = SchedCounts::default();
        c.add_raw(&s);
        let r = SchedReport::of(&c, 2.0);
        assert_eq!((r.voluntary_switches, r.involuntary_switches), (10, 4));
        assert_eq!((r.voluntary_per_s, r.involuntary_per_s), (5.0, 2.0));
        assert_eq!(
            (r.on_cpu_ns, r.off_cpu_ns, r.blocked_ns),
            (1_000, 9_000, 2_000)
        );
        assert_eq!(
            (r.runqueue.count, r.runqueue.total_ns, r.runqueue.max_ns),
            (4, 7_000, Some(4_000))
        );
        let (p50, p99) = (r.runqueue.p50_ns.unwrap(), r.runqueue.p99_ns.unwrap());
        assert!((896..1024).contains(&p50), "{p50}");
        assert!((3584..=4000).contains(&p99), "{p99}");
        assert!(!r.runqueue.max_is_bound);
        // No wait measured: no latency to show.
        let none = SchedReport::of(&SchedCounts::default(), 1.0);
        assert_eq!((none.runqueue.p50_ns, none.runqueue.max_ns), (None, None));
    }

    #[test]
    fn a_thread_without_syscalls_runs_silent() {
        let mut runs = SilentRuns::default();
        let thread = |cpu: u64| ThreadCounts {
            slot: 0,
            pid: 7,
            comm: String::new(),
            alive: true,
            counts: SchedCounts {
                on_cpu_ns: cpu,
                ..Default::default()
            },
            pool_addr: 0,
            cpu_without_syscalls_ns: 0,
        };
        let calls = |n: u64| {
            [(
                (8, 39),
                ThreadCallCounts {
                    pid: 7,
                    calls: n,
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect()
        };
        let mut t = [(8, thread(100))].into_iter().collect();
        runs.observe(&mut t, &calls(5));
        assert_eq!(t[&8].cpu_without_syscalls_ns, 0);
        let mut t = [(8, thread(400))].into_iter().collect();
        runs.observe(&mut t, &calls(5));
        assert_eq!(t[&8].cpu_without_syscalls_ns, 300);
        // A call: it starts again from this reading.
        let mut t = [(8, thread(500))].into_iter().collect();
        runs.observe(&mut t, &calls(6));
        assert_eq!(t[&8].cpu_without_syscalls_ns, 0);
        let mut t = [(8, thread(900))].into_iter().collect();
        runs.observe(&mut t, &calls(6));
        assert_eq!(t[&8].cpu_without_syscalls_ns, 400);
    }

    #[test]
    fn since_subtracts() {
        let a = SchedCounts {
            voluntary: 3,
            on_cpu_ns: 100,
            ..Default::default()
        };
        let mut b = a.clone();
        b.voluntary = 5;
        b.on_cpu_ns = 250;
        b.runq_count = 1;
        b.runq_max_ns = 900;
        b.runq_hist[hist::bucket(900)] = 1;
        let d = b.since(&a);
        assert_eq!(
            (d.voluntary, d.on_cpu_ns, d.runq_count, d.runq_max_ns),
            (2, 150, 1, 900)
        );
    }
}
