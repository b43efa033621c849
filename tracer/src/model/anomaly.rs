//! Anomalies against the run's own baseline (issue 13), flagged live in every sink: per
//! target (`processes[i]`) and syscall, a call rate, an error rate or a p99 latency beyond
//! its recent robust spread (the median and the median absolute deviation of its last
//! [`HISTORY`] intervals), and an errno the run had not seen before. Each anomaly says
//! when it started; it is listed in every window while it lasts. Pure: the engine keeps a
//! [`Detector`] and hands each interval report to it before the sinks get the report.
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use super::{Report, WallClock};

/// Intervals a figure's baseline is made of.
pub const HISTORY: usize = 30;
/// Intervals of history before a figure is judged.
pub const WARMUP: usize = 10;
/// A value is beyond the spread when it is this many (scaled) MADs from the median...
pub const MADS: f64 = 6.0;
/// ...and at least this far from it, relative to it (a jitter of a steady figure is not
/// an anomaly): half the median for a rate...
pub const MIN_RELATIVE: f64 = 0.5;
/// ...the median itself for a p99 (it doubled: the histogram's buckets and the few calls
/// beyond the 99th of a window make a p99 jump by a third without anything changing)...
pub const MIN_RELATIVE_P99: f64 = 1.0;
/// ...and for a rate at least this many calls (or errors) per second.
pub const MIN_RATE: f64 = 5.0;
/// A p99 is judged only in intervals with at least this many timed calls (with fewer, it
/// is the window's few slowest calls: one preempted call makes it).
pub const MIN_TIMED: u64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Calls per second beyond the baseline (up or down: a stall shows as a drop).
    Rate,
    /// Failed calls per second beyond the baseline.
    ErrorRate,
    /// The interval's p99 latency beyond the baseline.
    P99,
    /// An errno the run had not seen for that syscall.
    NewErrno,
}

impl AnomalyKind {
    /// As the JSON says it.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Rate => "rate",
            AnomalyKind::ErrorRate => "error_rate",
            AnomalyKind::P99 => "p99",
            AnomalyKind::NewErrno => "new_errno",
        }
    }
}

/// What an anomaly is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: AnomalyKind,
    /// The target's index in `processes`.
    slot: usize,
    syscall: String,
    errno: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// The target, as the report names it (`PID (comm)`, or a selector's label).
    pub target: String,
    pub syscall: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// The window's value (calls/s, errors/s, ns; for a new errno, its failures).
    pub value: f64,
    /// The baseline it is judged against: the median of the recent intervals (0 for a
    /// new errno).
    pub baseline: f64,
    /// When it began: the start of the first window it was flagged in.
    pub started: WallClock,
    /// Whether it began in this window.
    pub new: bool,
    /// Windows it has been flagged in so far (in `final`: in all).
    pub windows: u64,
    /// The target's index in `processes`.
    #[serde(skip)]
    pub slot: usize,
}

/// Anomalies the final report lists: the run's last this many.
pub const MAX_EPISODES: usize = 100;

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Whether `x` lies beyond the robust spread of `history` (`min_abs`: the least distance
/// that counts, in the figure's unit; `min_rel`, relative to the median), and the median.
/// None while the history is too short.
pub fn beyond(history: &VecDeque<f64>, x: f64, min_abs: f64, min_rel: f64) -> Option<(bool, f64)> {
    if history.len() < WARMUP {
        return None;
    }
    let mut h: Vec<f64> = history.iter().copied().collect();
    let m = median(&mut h);
    let mut dev: Vec<f64> = h.iter().map(|v| (v - m).abs()).collect();
    // 1.4826 MAD estimates a normal spread's standard deviation.
    let spread = 1.4826 * median(&mut dev);
    let d = (x - m).abs();
    Some((d > MADS * spread && d > min_rel * m && d >= min_abs, m))
}

/// The run's baselines and the anomalies going on.
#[derive(Debug, Default)]
pub struct Detector {
    history: BTreeMap<(AnomalyKind, usize, String), VecDeque<f64>>,
    errnos: BTreeSet<(usize, String, String)>,
    /// Anomalies going on, with when they started and for how many windows.
    ongoing: BTreeMap<Key, (WallClock, u64)>,
    /// Intervals seen.
    intervals: u64,
    /// Every anomaly of the run once, in the order they began: the last [`MAX_EPISODES`]
    /// (each updated while it lasts, with its most extreme value), and how many before.
    episodes: VecDeque<(Key, Anomaly)>,
    episodes_omitted: u64,
}

impl Detector {
    /// The anomalies of an interval report (its baselines are the intervals before it).
    pub fn observe(&mut self, r: &Report) -> Vec<Anomaly> {
        let secs = r.duration_s;
        let mut flagged: Vec<(Key, f64, f64)> = Vec::new();
        if secs <= 0.0 {
            return Vec::new();
        }
        let first = self.intervals == 0;
        self.intervals += 1;
        let mut seen: BTreeSet<(AnomalyKind, usize, String)> = BTreeSet::new();
        // A target one of whose processes ended in the window made fewer calls for that
        // alone: its drops are not flagged.
        let ended = |slot: usize| r.processes.get(slot).is_some_and(|p| p.life.exited > 0);
        for (slot, p) in r.processes.iter().enumerate() {
            for row in &p.syscalls {
                let name = row.name.clone();
                // Rates either way (a drop is a stall), errors and latency only up.
                let mut judge = |kind, x: f64, flagged: &mut Vec<_>| {
                    let (min_abs, min_rel) = match kind {
                        AnomalyKind::P99 => (0.0, MIN_RELATIVE_P99),
                        _ => (MIN_RATE, MIN_RELATIVE),
                    };
                    let h = self.history.entry((kind, slot, name.clone())).or_default();
                    if let Some((true, m)) = beyond(h, x, min_abs, min_rel)
                        && (x > m || (kind == AnomalyKind::Rate && !ended(slot)))
                    {
                        flagged.push((
                            Key {
                                kind,
                                slot,
                                syscall: name.clone(),
                                errno: None,
                            },
                            x,
                            m,
                        ));
                    }
                    h.push_back(x);
                    if h.len() > HISTORY {
                        h.pop_front();
                    }
                };
                judge(AnomalyKind::Rate, row.calls as f64 / secs, &mut flagged);
                seen.insert((AnomalyKind::Rate, slot, name.clone()));
                judge(
                    AnomalyKind::ErrorRate,
                    row.errors as f64 / secs,
                    &mut flagged,
                );
                seen.insert((AnomalyKind::ErrorRate, slot, name.clone()));
                if row.timed >= MIN_TIMED
                    && let Some(p99) = row.p99_ns
                {
                    judge(AnomalyKind::P99, p99 as f64, &mut flagged);
                }
                for (errno, n) in &row.errnos {
                    let new = self.errnos.insert((slot, name.clone(), errno.clone()));
                    if new && !first {
                        flagged.push((
                            Key {
                                kind: AnomalyKind::NewErrno,
                                slot,
                                syscall: name.clone(),
                                errno: Some(errno.clone()),
                            },
                            *n as f64,
                            0.0,
                        ));
                    }
                }
            }
        }
        // A syscall the window did not make at all: its rates were 0.
        let absent: Vec<(AnomalyKind, usize, String)> = self
            .history
            .keys()
            .filter(|k| k.0 != AnomalyKind::P99 && !seen.contains(*k))
            .cloned()
            .collect();
        for k in absent {
            let h = self.history.get_mut(&k).expect("listed above");
            if let Some((true, m)) = beyond(h, 0.0, MIN_RATE, MIN_RELATIVE)
                && k.0 == AnomalyKind::Rate
                && !ended(k.1)
            {
                flagged.push((
                    Key {
                        kind: k.0,
                        slot: k.1,
                        syscall: k.2.clone(),
                        errno: None,
                    },
                    0.0,
                    m,
                ));
            }
            h.push_back(0.0);
            if h.len() > HISTORY {
                h.pop_front();
            }
        }
        // Going on: those flagged again keep their start; the others have ended.
        let mut ongoing = BTreeMap::new();
        let mut out = Vec::new();
        for (key, value, baseline) in flagged {
            let (started, windows, new) = match self.ongoing.get(&key) {
                Some((t, n)) => (*t, n + 1, false),
                None => (r.start, 1, true),
            };
            let a = Anomaly {
                kind: key.kind,
                target: r.processes.get(key.slot).map_or_else(String::new, |p| {
                    p.selector
                        .clone()
                        .unwrap_or_else(|| super::ProcessInfo::name(p.pid, &p.comm))
                }),
                syscall: key.syscall.clone(),
                errno: key.errno.clone(),
                value,
                baseline,
                started,
                new,
                windows,
                slot: key.slot,
            };
            self.episode(&key, &a);
            if key.kind != AnomalyKind::NewErrno {
                ongoing.insert(key, (started, windows));
            }
            out.push(a);
        }
        self.ongoing = ongoing;
        out
    }

    /// Notes an anomaly of a window in the run's list: a new one at its end, one going on
    /// updated (its windows, and its value when further from the baseline).
    fn episode(&mut self, key: &Key, a: &Anomaly) {
        if !a.new
            && let Some((_, e)) = self
                .episodes
                .iter_mut()
                .rev()
                .find(|(k, e)| k == key && e.started == a.started)
        {
            e.windows = a.windows;
            if (a.value - a.baseline).abs() > (e.value - e.baseline).abs() {
                (e.value, e.baseline) = (a.value, a.baseline);
            }
            return;
        }
        if self.episodes.len() == MAX_EPISODES {
            self.episodes.pop_front();
            self.episodes_omitted += 1;
        }
        let mut e = a.clone();
        e.new = false;
        self.episodes.push_back((key.clone(), e));
    }

    /// The run's anomalies, in the order they began (the last [`MAX_EPISODES`]), and how
    /// many began before those: what the final report lists.
    pub fn episodes(&self) -> (Vec<Anomaly>, u64) {
        (
            self.episodes.iter().map(|(_, a)| a.clone()).collect(),
            self.episodes_omitted,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProcessInfo, ReportKind, Sample, SyscallCounts, ctx, window};

    /// An interval report of 1 s in which target 0 made `calls` getppid (each `ns`) and
    /// `failed` failing openat (errno `errno`).
    fn interval(t: u64, calls: u64, ns: u64, failed: u64, errno: u32) -> Report {
        let mut s = Sample::default();
        let mut c = SyscallCounts {
            calls,
            timed: calls,
            total_ns: calls * ns,
            max_ns: ns,
            ..Default::default()
        };
        c.hist[tracer_common::hist::bucket(ns)] = calls;
        s.syscalls.insert((0, 110), c);
        if failed > 0 {
            let mut o = SyscallCounts {
                calls: failed,
                errors: failed,
                ..Default::default()
            };
            o.errnos.insert(errno, failed);
            s.syscalls.insert((0, 257), o);
        }
        let targets = [ProcessInfo {
            pid: 9,
            comm: "app".into(),
        }];
        let mut w = window(ReportKind::Interval, &s, 1.0);
        w.start_ns = t * 1_000_000_000;
        w.end_ns = (t + 1) * 1_000_000_000;
        Report::build(&w, &ctx(&targets))
    }

    #[test]
    fn a_robust_spread_flags_outliers_only() {
        let h: VecDeque<f64> = [
            100.0, 102.0, 98.0, 101.0, 99.0, 100.0, 103.0, 97.0, 100.0, 101.0,
        ]
        .into_iter()
        .collect();
        assert_eq!(beyond(&h, 100.0, 5.0, 0.5), Some((false, 100.0)));
        assert_eq!(beyond(&h, 250.0, 5.0, 0.5), Some((true, 100.0)));
        assert_eq!(beyond(&h, 0.0, 5.0, 0.5), Some((true, 100.0)));
        // A jitter of a steady figure (MAD 0) is not one: at least half the median.
        let flat: VecDeque<f64> = std::iter::repeat_n(100.0, 10).collect();
        assert_eq!(beyond(&flat, 120.0, 5.0, 0.5), Some((false, 100.0)));
        assert_eq!(
            beyond(&flat.iter().take(5).copied().collect(), 900.0, 5.0, 0.5),
            None
        );
    }

    /// A steady rate, then a jump: flagged from the window it began in, with that start,
    /// while it lasts; then a stall (no calls at all); a new errno once, after the first
    /// interval; a slower p99.
    #[test]
    fn anomalies_say_when_they_started() {
        let mut d = Detector::default();
        for t in 0..12 {
            let jitter = [0, 3, 1, 4, 2][t as usize % 5];
            assert!(
                d.observe(&interval(t, 1000 + jitter, 300, 0, 2)).is_empty(),
                "{t}"
            );
        }
        let a = d.observe(&interval(12, 5000, 300, 0, 2));
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(
            (a[0].kind, a[0].new, a[0].syscall.as_str()),
            (AnomalyKind::Rate, true, "getppid")
        );
        assert_eq!((a[0].value, a[0].baseline), (5000.0, 1002.0));
        let started = a[0].started;
        let a = d.observe(&interval(13, 5100, 300, 0, 2));
        assert_eq!((a.len(), a[0].new, a[0].started), (1, false, started));
        // Back to normal: nothing.
        assert!(d.observe(&interval(14, 1001, 300, 0, 2)).is_empty());
        // A stall: no getppid at all in the window.
        let mut stall = interval(15, 0, 300, 0, 2);
        stall.processes[0].syscalls.clear();
        let a = d.observe(&stall);
        assert!(
            a.iter()
                .any(|x| x.kind == AnomalyKind::Rate && x.value == 0.0),
            "{a:?}"
        );
        // An errno never seen before, once.
        let a = d.observe(&interval(16, 1000, 300, 1, 13));
        assert!(
            a.iter()
                .any(|x| x.kind == AnomalyKind::NewErrno && x.errno.as_deref() == Some("EACCES")),
            "{a:?}"
        );
        let a = d.observe(&interval(17, 1000, 300, 1, 13));
        assert!(!a.iter().any(|x| x.kind == AnomalyKind::NewErrno), "{a:?}");
        // Ten times slower calls: the p99.
        let a = d.observe(&interval(18, 1000, 3000, 0, 2));
        assert!(a.iter().any(|x| x.kind == AnomalyKind::P99), "{a:?}");
    }

    /// Latency is flagged when the p99 at least doubled, not at a bucket's jitter, and
    /// never for being faster; fewer errors are no anomaly either.
    #[test]
    fn latency_and_errors_are_flagged_only_up() {
        let mut d = Detector::default();
        for t in 0..12 {
            assert!(
                d.observe(&interval(t, 1000, 1000, 100, 2)).is_empty(),
                "{t}"
            );
        }
        assert!(d.observe(&interval(12, 1000, 1600, 100, 2)).is_empty());
        assert!(d.observe(&interval(13, 1000, 100, 60, 2)).is_empty());
        let a = d.observe(&interval(14, 1000, 2500, 100, 2));
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].kind, AnomalyKind::P99);
        assert!(a[0].value >= 2.0 * a[0].baseline, "{a:?}");
        // More failed calls: more calls, and more errors.
        let a = d.observe(&interval(15, 1000, 1000, 900, 2));
        let kinds: Vec<_> = a
            .iter()
            .map(|a| (a.kind, a.syscall.as_str(), a.value))
            .collect();
        assert_eq!(
            kinds,
            [
                (AnomalyKind::Rate, "openat", 900.0),
                (AnomalyKind::ErrorRate, "openat", 900.0)
            ]
        );
    }

    /// The final report lists each anomaly once: its start, its windows, its most
    /// extreme value; and the text report says them.
    #[test]
    fn the_run_lists_each_anomaly_once() {
        let mut d = Detector::default();
        for t in 0..12 {
            d.observe(&interval(t, 1000 + t % 3, 300, 0, 2));
        }
        let first = d.observe(&interval(12, 4000, 300, 0, 2));
        d.observe(&interval(13, 6000, 300, 0, 2));
        d.observe(&interval(14, 5000, 300, 0, 2));
        d.observe(&interval(15, 1000, 300, 0, 2));
        d.observe(&interval(16, 1000, 300, 3, 2));
        let mut fin = interval(0, 0, 0, 0, 0);
        fin.kind = crate::model::ReportKind::Final;
        fin.judge(&mut d);
        let a = &fin.anomalies;
        assert_eq!(a.len(), 2, "{a:?}");
        assert_eq!(
            (a[0].kind, a[0].windows, a[0].value),
            (AnomalyKind::Rate, 3, 6000.0)
        );
        assert_eq!(a[0].started, first[0].started);
        assert!(!a[0].new);
        assert_eq!(
            (a[1].kind, a[1].errno.as_deref()),
            (AnomalyKind::NewErrno, Some("ENOENT"))
        );
        assert_eq!(fin.anomalies_omitted, 0);
        let mut out = Vec::new();
        crate::render::text::write(&mut out, &fin).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("anomalies during the run"), "{text}");
        assert!(
            text.contains("anomaly: 9 (app) getppid: 6.0k calls/s, baseline 1.0k (since 1970-01-01T00:00:12Z, 3 intervals)"),
            "{text}"
        );
        assert!(
            text.contains("anomaly: 9 (app) openat: ENOENT first seen (3 failed)"),
            "{text}"
        );
    }

    #[test]
    fn the_run_keeps_its_last_anomalies() {
        let mut d = Detector::default();
        for t in 0..12 {
            d.observe(&interval(t, 1000, 300, 0, 2));
        }
        // A new errno in each window: one anomaly each.
        for (i, t) in (12..12 + MAX_EPISODES as u64 + 5).enumerate() {
            d.observe(&interval(t, 1000, 300, 1, 1000 + i as u32));
        }
        let (listed, omitted) = d.episodes();
        assert_eq!((listed.len(), omitted), (MAX_EPISODES, 5));
        assert_eq!(listed[0].errno.as_deref(), Some("E1005"), "{:?}", listed[0]);
    }
}
