//! Comparing two windows of recordings (`tracer compare`, issue 13). Each figure (a
//! syscall's calls, errors and mean latency; switches and time by state; RSS and
//! descriptors) is sampled once per interval of each window; the change is that of its
//! mean, and it is judged beyond the windows' own noise by Welch's t-test on the two
//! samples. Changed figures come first, the largest relative changes first.
use std::collections::BTreeMap;

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// What a figure is and how it is shown.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Figure {
    /// `syscall`, `sched`, `memory`.
    pub group: &'static str,
    /// For example `read calls/s`, `on-CPU share`, `RSS MiB`.
    pub name: String,
}

/// One interval of a recording: its figures' values (absent: no sample of it there).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interval {
    pub figures: BTreeMap<Figure, f64>,
}

/// A figure whose absence from an interval is a zero (a syscall not made), rather than no
/// sample (a latency with no call to time).
pub fn zero_when_absent(f: &Figure) -> bool {
    !f.name.ends_with("mean latency us") && f.group != "memory"
}

/// Below this p-value a change is beyond the noise...
pub const P_CHANGED: f64 = 0.01;
/// ...if it is at least this large, relative to the before window.
pub const MIN_CHANGE: f64 = 0.05;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Beyond the noise of the windows.
    Changed,
    /// Within it (or too small to matter).
    WithinNoise,
    /// Fewer than 2 intervals on a side: no noise to judge against.
    TooFewIntervals,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    #[serde(flatten)]
    pub figure: Figure,
    pub before: f64,
    pub after: f64,
    /// after / before - 1; None when before is 0.
    pub change: Option<f64>,
    /// Welch's t-test of the two windows' samples (two-sided); None with too few.
    pub p_value: Option<f64>,
    pub verdict: Verdict,
    pub intervals_before: usize,
    pub intervals_after: usize,
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var)
}

/// Welch's two-sided t-test: the probability of a difference of means at least this
/// large if both samples came from one distribution. Both constant: 0 if their values
/// differ, else 1.
pub fn welch_p(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    let se = (sa + sb).sqrt();
    if se == 0.0 {
        return Some(if ma == mb { 1.0 } else { 0.0 });
    }
    let t = (ma - mb) / se;
    let df = (sa + sb).powi(2)
        / (sa.powi(2) / (a.len() as f64 - 1.0) + sb.powi(2) / (b.len() as f64 - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(2.0 * (1.0 - dist.cdf(t.abs())))
}

/// Every figure of either window, compared.
pub fn compare(before: &[Interval], after: &[Interval]) -> Vec<Change> {
    let mut figures: Vec<&Figure> = before
        .iter()
        .chain(after)
        .flat_map(|i| i.figures.keys())
        .collect();
    figures.sort();
    figures.dedup();
    let samples = |w: &[Interval], f: &Figure| -> Vec<f64> {
        w.iter()
            .filter_map(|i| match i.figures.get(f) {
                Some(v) => Some(*v),
                None if zero_when_absent(f) => Some(0.0),
                None => None,
            })
            .collect()
    };
    let mut out: Vec<Change> = figures
        .into_iter()
        .filter_map(|f| {
            let (b, a) = (samples(before, f), samples(after, f));
            if b.is_empty() || a.is_empty() {
                return None;
            }
            let (mb, ma) = (mean_var(&b).0, mean_var(&a).0);
            let change = (mb != 0.0).then(|| ma / mb - 1.0);
            let p = welch_p(&a, &b);
            let verdict = match p {
                None => Verdict::TooFewIntervals,
                Some(p) if p < P_CHANGED && change.is_none_or(|c| c.abs() >= MIN_CHANGE) => {
                    Verdict::Changed
                }
                Some(_) => Verdict::WithinNoise,
            };
            Some(Change {
                figure: f.clone(),
                before: mb,
                after: ma,
                change,
                p_value: p,
                verdict,
                intervals_before: b.len(),
                intervals_after: a.len(),
            })
        })
        .collect();
    // Changed first; then the largest relative changes (a figure new in `after`, first).
    let size = |c: &Change| c.change.map_or(f64::INFINITY, f64::abs);
    out.sort_by(|x, y| {
        (x.verdict != Verdict::Changed)
            .cmp(&(y.verdict != Verdict::Changed))
            .then(size(y).total_cmp(&size(x)))
            .then(x.figure.cmp(&y.figure))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(name: &str) -> Figure {
        Figure {
            group: "syscall",
            name: name.into(),
        }
    }

    fn series(name: &str, values: &[f64]) -> Vec<Interval> {
        values
            .iter()
            .map(|v| Interval {
                figures: [(fig(name), *v)].into(),
            })
            .collect()
    }

    #[test]
    fn welch_matches_a_known_value() {
        // Welch's own example samples (as on Wikipedia's page of the test); SciPy's
        // ttest_ind(equal_var=False) gives t = -2.4554, df = 24.99, p = 0.021378.
        let a = [
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7,
            21.4,
        ];
        let b = [
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5,
            24.4,
        ];
        let p = welch_p(&a, &b).unwrap();
        assert!((p - 0.021378).abs() < 1e-5, "{p}");
        assert_eq!(welch_p(&[1.0, 1.0], &[1.0, 1.0]), Some(1.0));
        assert_eq!(welch_p(&[1.0, 1.0], &[2.0, 2.0]), Some(0.0));
        assert_eq!(welch_p(&[1.0], &[2.0, 2.0]), None);
    }

    /// A rate that doubled is a change; one that moved within its spread is not; a
    /// figure absent from an interval counts as zero there.
    #[test]
    fn changes_beyond_the_noise_are_told_apart() {
        let before = series("read calls/s", &[100.0, 104.0, 98.0, 101.0, 97.0, 103.0]);
        let after = series("read calls/s", &[201.0, 199.0, 204.0, 196.0, 200.0, 202.0]);
        let c = &compare(&before, &after)[0];
        assert_eq!(c.verdict, Verdict::Changed);
        assert!((c.change.unwrap() - 1.0).abs() < 0.01, "{c:?}");
        let noisy = series("read calls/s", &[102.0, 99.0, 101.0, 97.0, 103.0, 100.0]);
        let c = &compare(&before, &noisy)[0];
        assert_eq!(c.verdict, Verdict::WithinNoise, "{c:?}");
        let mut gap = after.clone();
        gap[0].figures.clear();
        let c = &compare(&before, &gap)[0];
        assert_eq!(c.intervals_after, 6);
        assert!((c.after - 1001.0 / 6.0).abs() < 1e-9, "{c:?}");
        assert_eq!(
            compare(&before[..1], &after)[0].verdict,
            Verdict::TooFewIntervals
        );
    }

    /// Changed figures first, the largest first; a figure new in `after` first of all.
    #[test]
    fn the_largest_changes_come_first() {
        let mut before = series("a calls/s", &[10.0, 11.0, 10.0, 9.0]);
        let mut after = series("a calls/s", &[20.0, 21.0, 20.0, 19.0]);
        for (w, vals) in [
            (&mut before, [10.0, 10.5, 9.5, 10.0]),
            (&mut after, [50.0, 51.0, 49.0, 50.0]),
        ] {
            for (i, v) in w.iter_mut().zip(vals) {
                i.figures.insert(fig("b calls/s"), v);
            }
        }
        for (i, v) in after.iter_mut().zip([10.0, 11.0, 10.0, 11.0]) {
            i.figures.insert(fig("c calls/s"), v);
        }
        for (i, v) in before.iter_mut().zip([5.0, 5.1, 4.9, 5.0]) {
            i.figures.insert(fig("d calls/s"), v);
        }
        for (i, v) in after.iter_mut().zip([5.05, 4.95, 5.0, 5.1]) {
            i.figures.insert(fig("d calls/s"), v);
        }
        let names: Vec<String> = compare(&before, &after)
            .into_iter()
            .map(|c| c.figure.name)
            .collect();
        assert_eq!(names, ["c calls/s", "b calls/s", "a calls/s", "d calls/s"]);
    }
}
