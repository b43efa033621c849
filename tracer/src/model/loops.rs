//! Event loops (issue 15): per loop thread, the busy time of each iteration (from the
//! return of one epoll_wait/poll/select to the entry of the next) as a distribution, the
//! stalls (iterations of `--stall` or more), and an iteration still open that has already
//! passed it. Pure: counters in, rows out.
use serde::Serialize;
use tracer_common::loops::LoopState;

use super::{interval_max, percentile, rate};

/// A loop thread's counters as sampled: cumulative since it was first seen, with the
/// iteration open at the reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopCounts {
    pub slot: u32,
    pub pid: u32,
    pub comm: String,
    pub iterations: u64,
    pub busy_ns: u64,
    pub busy_max_ns: u64,
    pub stalls: u64,
    pub hist: Vec<u64>,
    /// How long the iteration open at the reading has lasted (0 if the thread waits).
    pub open_ns: u64,
}

impl LoopCounts {
    /// From the kernel's entry, read at `now_ns`; `alive`: the thread still exists (an
    /// ended thread's last iteration is not open).
    pub fn of(s: &LoopState, comm: String, now_ns: u64, alive: bool) -> Self {
        Self {
            slot: s.slot,
            pid: s.tgid,
            comm,
            iterations: s.iterations,
            busy_ns: s.busy_ns,
            busy_max_ns: s.busy_max_ns,
            stalls: s.stalls,
            hist: s.hist.to_vec(),
            // A thread that waited once only is not known to loop (see the kernel side).
            open_ns: if alive && s.since_ns != 0 && s.iterations >= 1 {
                now_ns.saturating_sub(s.since_ns)
            } else {
                0
            },
        }
    }

    /// What happened since `prev` (the same thread's earlier reading, if any).
    pub fn since(&self, prev: Option<&Self>) -> Self {
        let Some(p) = prev.filter(|p| p.pid == self.pid && p.iterations <= self.iterations) else {
            return self.clone();
        };
        let hist: Vec<u64> = self
            .hist
            .iter()
            .zip(&p.hist)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let (busy_max_ns, _) = interval_max(&hist, self.busy_max_ns, p.busy_max_ns);
        Self {
            iterations: self.iterations - p.iterations,
            busy_ns: self.busy_ns.saturating_sub(p.busy_ns),
            busy_max_ns,
            stalls: self.stalls.saturating_sub(p.stalls),
            hist,
            ..self.clone()
        }
    }
}

/// A loop thread in a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoopRow {
    /// The target slot of its process (for sinks that label by service).
    #[serde(skip)]
    pub slot: u32,
    pub tid: u32,
    pub pid: u32,
    pub comm: String,
    /// Iterations that ended in the window, and per second.
    pub iterations: u64,
    pub iterations_per_s: f64,
    /// Their busy time, and its share of the window.
    pub busy_ns: u64,
    pub busy_share: f64,
    /// Of those iterations; None when none ended.
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub max_ns: Option<u64>,
    /// Iterations of `--stall` or more that ended in the window.
    pub stalls: u64,
    /// The iteration still open at the window's end, when it has lasted `--stall` or more
    /// already: the loop is stalled now.
    pub stalled_now_ns: Option<u64>,
    /// The iterations' histogram (`tracer_common::hist` buckets), for metrics.
    #[serde(skip)]
    pub hist: Vec<u64>,
}

impl LoopRow {
    pub fn of(tid: u32, c: &LoopCounts, secs: f64, stall_ns: u64) -> Self {
        let any = c.iterations > 0;
        Self {
            slot: c.slot,
            tid,
            pid: c.pid,
            comm: c.comm.clone(),
            iterations: c.iterations,
            iterations_per_s: rate(c.iterations, secs),
            busy_ns: c.busy_ns,
            busy_share: if secs > 0.0 {
                (c.busy_ns as f64 / 1e9 / secs).min(1.0)
            } else {
                0.0
            },
            p50_ns: any.then(|| percentile(&c.hist, 0.50).min(c.busy_max_ns)),
            p99_ns: any.then(|| percentile(&c.hist, 0.99).min(c.busy_max_ns)),
            max_ns: any.then_some(c.busy_max_ns),
            stalls: c.stalls,
            stalled_now_ns: (stall_ns > 0 && c.open_ns >= stall_ns).then_some(c.open_ns),
            hist: c.hist.clone(),
        }
    }
}

/// Loop threads listed in one report, the longest iterations first.
pub const MAX_LOOPS_LISTED: usize = 50;

/// The rows of a window: threads with an iteration in it or stalled now, longest first.
pub fn rows(
    loops: &std::collections::BTreeMap<u32, LoopCounts>,
    secs: f64,
    stall_ns: u64,
) -> (Vec<LoopRow>, u64) {
    let mut rows: Vec<LoopRow> = loops
        .iter()
        .map(|(tid, c)| LoopRow::of(*tid, c, secs, stall_ns))
        .filter(|r| r.iterations > 0 || r.stalled_now_ns.is_some())
        .collect();
    let longest = |r: &LoopRow| r.stalled_now_ns.max(r.max_ns).unwrap_or(0);
    rows.sort_by(|a, b| longest(b).cmp(&longest(a)).then(a.tid.cmp(&b.tid)));
    let omitted = rows.len().saturating_sub(MAX_LOOPS_LISTED) as u64;
    rows.truncate(MAX_LOOPS_LISTED);
    (rows, omitted)
}

#[cfg(test)]
mod tests {
    use tracer_common::hist;

    use super::*;

    fn counts(iterations: u64, busy: &[u64], open_ns: u64) -> LoopCounts {
        let mut h = vec![0; hist::BUCKETS];
        for &b in busy {
            h[hist::bucket(b)] += 1;
        }
        LoopCounts {
            slot: 0,
            pid: 10,
            comm: "node".into(),
            iterations,
            busy_ns: busy.iter().sum(),
            busy_max_ns: busy.iter().copied().max().unwrap_or(0),
            stalls: busy.iter().filter(|&&b| b >= 100_000_000).count() as u64,
            hist: h,
            open_ns,
        }
    }

    #[test]
    fn a_window_holds_its_own_iterations() {
        let before = counts(2, &[1_000_000, 2_000_000], 0);
        let after = counts(3, &[1_000_000, 2_000_000, 2_000_000_000], 0);
        let d = after.since(Some(&before));
        assert_eq!((d.iterations, d.busy_ns, d.stalls), (1, 2_000_000_000, 1));
        let r = LoopRow::of(11, &d, 4.0, 100_000_000);
        assert_eq!(r.max_ns, Some(2_000_000_000));
        assert_eq!(r.busy_share, 0.5);
        assert_eq!(r.stalled_now_ns, None);
        // Another process's thread under the same id starts from zero.
        let other = LoopCounts {
            pid: 99,
            ..before.clone()
        };
        assert_eq!(after.since(Some(&other)).iterations, 3);
    }

    #[test]
    fn an_open_iteration_past_the_threshold_is_a_stall_now() {
        let c = counts(0, &[], 150_000_000);
        let (rows, omitted) = rows(&[(5, c.clone())].into_iter().collect(), 1.0, 100_000_000);
        assert_eq!(omitted, 0);
        assert_eq!(rows[0].stalled_now_ns, Some(150_000_000));
        assert_eq!(rows[0].p50_ns, None);
        // Below it: nothing to list (no iteration ended either).
        let (rows, _) = rows_of(&c, 200_000_000);
        assert!(rows.is_empty());
    }

    fn rows_of(c: &LoopCounts, stall_ns: u64) -> (Vec<LoopRow>, u64) {
        rows(&[(5, c.clone())].into_iter().collect(), 1.0, stall_ns)
    }
}
