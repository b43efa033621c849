//! Live anomaly flags (issue 13) on a real workload: a steady getppid rate, then a surge to
//! ten times it, then an errno the run had not seen: the NDJSON intervals flag the surge
//! from the window it began in, with that window's start, while it lasts, the new errno
//! once, nothing in the steady part before; the final object lists each once. And a stall:
//! an event loop whose calls stop for 1.5 s is flagged from the window it began in.
mod common;

use common::*;

/// The windows an anomaly that began in `intervals[first]` lasts: it and each window
/// after it in which `flagged` finds it, not new, one more window each time, with the
/// same start.
fn lasting(
    intervals: &[serde_json::Value],
    first: usize,
    flagged: impl Fn(&serde_json::Value) -> Option<serde_json::Value>,
) -> u64 {
    let mut windows = 1;
    for v in &intervals[first + 1..] {
        let Some(a) = flagged(v) else { break };
        windows += 1;
        assert_eq!(
            (a["new"].as_bool(), a["windows"].as_u64()),
            (Some(false), Some(windows))
        );
        assert_eq!(a["started"], intervals[first]["start"]);
    }
    windows
}

/// The rate anomalies of `syscall` the final object lists.
fn rate_runs<'a>(fin: &'a serde_json::Value, syscall: &str) -> Vec<&'a serde_json::Value> {
    fin["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["syscall"] == syscall && a["kind"] == "rate")
        .collect()
}

#[test]
fn a_surge_and_a_new_errno_are_flagged_when_they_start() {
    let Some(_g) = ebpf_test() else { return };
    // 400 getppid/s for 4 s (16 windows of 250 ms: the baseline is judged from the 11th),
    // 4000/s for 1.5 s, 3 failed opens, 400/s for 1 s.
    let out = run(tracer().args([
        "--interval",
        "0.25",
        "--output",
        "json",
        "--",
        WORKLOAD,
        "surge",
        "400",
        "4000",
        "4000",
        "1500",
        "3",
        "1000",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let (intervals, fin) = lines.split_at(lines.len() - 1);
    let fin = &fin[0];
    assert_calls(fin, "getppid", 400 * 4 + 4000 * 3 / 2 + 400);

    let rate_of = |v: &serde_json::Value| {
        row(v, "getppid").map_or(0.0, |r| r["calls_per_s"].as_f64().unwrap())
    };
    let flagged = |v: &serde_json::Value, kind: &str, syscall: &str| -> Option<serde_json::Value> {
        v["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == kind && a["syscall"] == syscall)
            .cloned()
    };
    // The first window in which getppid ran at more than twice the base rate.
    let surge = intervals
        .iter()
        .position(|v| rate_of(v) > 800.0)
        .expect("a surge window");
    assert!(
        surge >= 12,
        "the surge began in window {surge}: too early to judge"
    );
    // Nothing of getppid, and no rate or errors of anything, in the steady part (a sleep's
    // latency depends on the machine's load: its p99 may double on a busy machine).
    for (i, v) in intervals[..surge].iter().enumerate() {
        let a = v["anomalies"].as_array().unwrap();
        assert!(
            !a.iter()
                .any(|a| a["syscall"] == "getppid" || a["kind"] != "p99"),
            "window {i} of the steady part flagged {a:?}"
        );
    }
    let a = flagged(&intervals[surge], "rate", "getppid").expect("the surge flagged");
    assert_eq!(a["new"], true, "{a}");
    assert_eq!(a["started"], intervals[surge]["start"], "{a}");
    let base = a["baseline"].as_f64().unwrap();
    assert!((380.0..=420.0).contains(&base), "baseline {base}");
    assert_eq!(
        a["target"].as_str().unwrap().split(' ').nth(1),
        Some("(tracer-workload)")
    );
    // While it lasts: the same start, one more window each time; every window of the
    // surge's full rate is in it (a window the surge's end cuts may be too, or not).
    let windows = lasting(intervals, surge, |v| flagged(v, "rate", "getppid"));
    assert!(windows >= 4, "{windows} windows of surge");
    let missed = intervals[surge + windows as usize..]
        .iter()
        .position(|v| rate_of(v) >= 3000.0);
    assert_eq!(
        missed, None,
        "a window at the surge's rate after {windows} flagged"
    );
    // The new errno: in one window only, with its count.
    let errno: Vec<&serde_json::Value> = intervals
        .iter()
        .filter_map(|v| {
            v["anomalies"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["kind"] == "new_errno")
        })
        .collect();
    assert_eq!(errno.len(), 1, "{errno:?}");
    assert_eq!(
        (errno[0]["errno"].as_str(), errno[0]["value"].as_f64()),
        (Some("EISDIR"), Some(3.0))
    );
    // The final object: the surge once, with its windows; the errno.
    let runs = rate_runs(fin, "getppid");
    assert!(!runs.is_empty(), "{}", fin["anomalies"]);
    assert_eq!(runs[0]["started"], intervals[surge]["start"]);
    assert_eq!(runs[0]["windows"].as_u64(), Some(windows));
    assert!(runs[0]["value"].as_f64().unwrap() > 3000.0, "{}", runs[0]);
    assert!(
        fin["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "new_errno" && a["errno"] == "EISDIR")
    );
}

/// The numbers of an NDJSON file.
fn ndjson(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let _ = std::fs::remove_file(path);
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A stall: an event loop on `poll` (about 100 iterations a second: 5 ms on the CPU, a
/// 5 ms wait) whose 400th iteration spins 1.5 s without a call, then 100 more. Its poll
/// rate drops to nothing: a rate anomaly from the window the stall began in, with that
/// window's start, while it lasts, nothing of poll before; or from the next window, when
/// the stall began late in its window (that window then kept most of its calls, within
/// the spread). The loop's own stall (`--stall`) is the same moment.
#[test]
fn a_stall_is_flagged_from_the_window_it_began() {
    let Some(_g) = ebpf_test() else { return };
    let json = std::env::temp_dir().join(format!("tracer-stall-{}.json", std::process::id()));
    let out = run(tracer()
        .args(["--interval", "0.25", "--output", "json", "-o"])
        .arg(&json)
        .args(["--", WORKLOAD, "loop", "500", "5", "400", "1500"]));
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    let stall_ns: u64 = said
        .split_whitespace()
        .skip_while(|w| *w != "stall_start_ns")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("the workload said {said}"));
    let lines = ndjson(&json);
    let (intervals, fin) = lines.split_at(lines.len() - 1);
    let fin = &fin[0];
    let mono = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    let rate_of =
        |v: &serde_json::Value| row(v, "poll").map_or(0.0, |r| r["calls_per_s"].as_f64().unwrap());
    let flagged = |v: &serde_json::Value| -> Option<serde_json::Value> {
        v["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "rate" && a["syscall"] == "poll")
            .cloned()
    };
    let began = intervals
        .iter()
        .position(|v| mono(v, "start_mono_ns") <= stall_ns && stall_ns < mono(v, "end_mono_ns"))
        .expect("a window holding the stall's start");
    assert!(
        began >= 12,
        "the stall began in window {began}: too early to judge"
    );
    let mut before: Vec<f64> = intervals[began - 10..began].iter().map(rate_of).collect();
    before.sort_by(f64::total_cmp);
    let base = before[5];
    assert!(
        base > 50.0,
        "the loop's poll rate before the stall: {before:?}"
    );
    // Nothing of poll before.
    let first = intervals
        .iter()
        .position(|v| flagged(v).is_some())
        .expect("the stall flagged");
    for (i, v) in intervals[..first].iter().enumerate() {
        let a = v["anomalies"].as_array().unwrap();
        assert!(
            !a.iter().any(|a| a["syscall"] == "poll"),
            "window {i} (the stall began in {began}) flagged {a:?}"
        );
    }
    let at_began = rate_of(&intervals[began]);
    assert!(
        first == began || (first == began + 1 && at_began >= 0.4 * base),
        "flagged from window {first}; the stall began in {began} (poll {at_began}/s there, {base}/s before)"
    );
    let a = flagged(&intervals[first]).unwrap();
    assert_eq!(a["new"], true, "{a}");
    assert_eq!(a["started"], intervals[first]["start"], "{a}");
    let baseline = a["baseline"].as_f64().unwrap();
    assert!(
        (0.8 * base..=1.25 * base).contains(&baseline),
        "baseline {baseline}, the rate before {base}"
    );
    assert!(a["value"].as_f64().unwrap() < 0.5 * baseline, "{a}");
    // While it lasts: the same start, one more window each; every window without a poll
    // is in it (1.5 s: at least 5 windows of 250 ms wholly inside).
    let windows = lasting(intervals, first, flagged);
    assert!(windows >= 5, "{windows} windows of the stall flagged");
    // After it: said, not asserted. In the emulated guests of the kernel matrix the loop's
    // rate after the stall was flagged again (6.12, 7.3), and once a window without a poll
    // followed the 5 flagged ones (6.16); on this machine neither happens. NOTES.md.
    let after = &intervals[first + windows as usize..];
    let again = after.iter().filter(|v| flagged(v).is_some()).count();
    let empty = after
        .iter()
        .filter(|v| rate_of(v) == 0.0 && v["duration_s"].as_f64() > Some(0.2))
        .count();
    eprintln!(
        "the stall: {windows} windows flagged; after it {again} flagged, {empty} without a poll"
    );
    // The final object: the stall first, with its start and windows; the loop's stall
    // event at the same moment.
    let runs = rate_runs(fin, "poll");
    assert!(!runs.is_empty(), "{}", fin["anomalies"]);
    assert_eq!(runs[0]["started"], intervals[first]["start"]);
    assert_eq!(runs[0]["windows"].as_u64(), Some(windows));
    assert_eq!(runs[0]["value"].as_f64(), Some(0.0), "{}", runs[0]);
    let events = fin["events"].as_array().unwrap();
    let stalls: Vec<f64> = events
        .iter()
        .filter(|e| e["type"] == "stall")
        .map(|e| mono(fin, "start_mono_ns") as f64 + e["t_s"].as_f64().unwrap() * 1e9)
        .collect();
    assert_eq!(stalls.len(), 1, "{events:?}");
    assert!(
        (stalls[0] - stall_ns as f64).abs() < 2e6,
        "the stall event at {}, the workload's stall at {stall_ns}",
        stalls[0]
    );
}
