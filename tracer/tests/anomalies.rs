//! Live anomaly flags (issue 13) on a real workload: a steady getppid rate, then a surge to
//! ten times it, then an errno the run had not seen: the NDJSON intervals flag the surge
//! from the window it began in, with that window's start, while it lasts, the new errno
//! once, nothing in the steady part before; the final object lists each once.
mod common;

use common::*;

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
    let mut windows = 1;
    for v in &intervals[surge + 1..] {
        let Some(a) = flagged(v, "rate", "getppid") else {
            break;
        };
        windows += 1;
        assert_eq!(
            (a["new"].as_bool(), a["windows"].as_u64()),
            (Some(false), Some(windows))
        );
        assert_eq!(a["started"], intervals[surge]["start"]);
    }
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
    let runs: Vec<&serde_json::Value> = fin["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["syscall"] == "getppid" && a["kind"] == "rate")
        .collect();
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
