//! The metrics endpoint (`--listen`, issue 13), scraped directly: its counts are the
//! report's, exactly; the series stay under their limit while processes churn; the
//! endpoint answers /healthz and nothing it does not serve. (Prometheus itself scrapes
//! tracer in tests/prometheus.rs.)
mod common;

use std::{
    collections::BTreeMap,
    io::BufRead,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use common::*;

/// A running `tracer --listen 127.0.0.1:0 ARGS`, its metrics URL, and its stderr.
struct Served {
    tracer: Child,
    base: String,
    _err: std::io::BufReader<std::process::ChildStderr>,
}

fn serve(args: &[&str]) -> Served {
    let mut tracer = tracer()
        .env_remove("LD_LIBRARY_PATH")
        .args(["--listen", "127.0.0.1:0", "--interval", "0.2"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(tracer.stderr.take().unwrap());
    let mut said = String::new();
    let mut base = None;
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "tracer ended before tracing: {said}"
        );
        if let Some(url) = line.trim().strip_prefix("tracer: metrics on ") {
            base = Some(url.trim_end_matches("/metrics").to_string());
        }
        if line.contains("tracing") {
            break;
        }
        said.push_str(&line);
    }
    Served {
        tracer,
        base: base.unwrap_or_else(|| panic!("no metrics address said: {said}")),
        _err: err,
    }
}

/// GET `url`: its status, content type and body.
fn get(url: &str) -> (u16, String, String) {
    let mut r = http().get(url).call().unwrap();
    let kind = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        r.status().as_u16(),
        kind,
        r.body_mut().read_to_string().unwrap(),
    )
}

/// The samples of an exposition: (name with its labels, value).
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The value of the one sample of family `name` whose labels include all of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = samples(text)
        .into_iter()
        .filter(|(k, _)| {
            k.split_once('{').map_or(k.as_str(), |(n, _)| n) == name
                && labels
                    .iter()
                    .all(|(l, v)| k.contains(&format!("{l}=\"{v}\"")))
        })
        .map(|(_, v)| v)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied()
}

/// Scrapes until `until` holds of the exposition (at most 20 s); the last one.
fn scrape_until(base: &str, mut until: impl FnMut(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = get(&format!("{base}/metrics"));
        assert_eq!(status, 200);
        if until(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "never so: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The exposition once the service `who` has exited: the exit is counted in the interval
/// it happens in; one more interval, so that it holds every interval up to a moment after.
fn scrape_after_exit(s: &Served, who: &[(&str, &str)]) -> String {
    let exits = |t: &str| value(t, "tracer_process_exits_total", who);
    let body = scrape_until(&s.base, |t| exits(t) == Some(1.0));
    let n = value(&body, "tracer_reports_total", &[]).unwrap();
    scrape_until(&s.base, |t| {
        value(t, "tracer_reports_total", &[]).is_some_and(|m| m > n)
    })
}

/// Stops tracer with SIGTERM: it ends cleanly.
fn stop(s: Served) -> std::process::Output {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(s.tracer.id() as i32, libc::SIGTERM) };
    let out = wait_output(s.tracer, Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    out
}

/// A launched workload with known calls (500 getppid, 20 writes, 7 failing opens), every
/// call timed: once it has exited, every syscall counter of the endpoint equals the final report's row,
/// errors by errno too; its exit shows; tracer keeps serving after its target exited.
#[test]
fn the_endpoint_counts_what_the_report_counts() {
    let Some(_g) = ebpf_test() else { return };
    let s = serve(&[
        "--output",
        "json",
        "--exact-latency",
        "--",
        WORKLOAD,
        "syscalls",
        "500",
        "20",
        "7",
    ]);
    let who = [("service", "tracer-workload"), ("comm", "tracer-workload")];
    let body = scrape_after_exit(&s, &who);
    // Still serving: the target's end does not end a run that serves metrics.
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.tracer_alive(), "tracer ended with its target");
    let r = final_report(&stop(s));
    let mut rows = 0;
    for row in r["syscalls"].as_array().unwrap() {
        let name = row["name"].as_str().unwrap();
        let sc = [who[0], who[1], ("syscall", name), ("abi", "x86_64")];
        let got = value(&body, "tracer_syscalls_total", &sc);
        assert_eq!(got, Some(row["calls"].as_f64().unwrap()), "{name}");
        let errnos: BTreeMap<String, u64> = serde_json::from_value(row["errnos"].clone()).unwrap();
        for (e, n) in errnos {
            let mut l = sc.to_vec();
            l.push(("errno", &e));
            let got = value(&body, "tracer_syscall_errors_total", &l);
            assert_eq!(got, Some(n as f64), "{name} {e}");
        }
        rows += 1;
    }
    assert!(rows > 5, "{}", r["syscalls"]);
    let getppid = [who[0], who[1], ("syscall", "getppid"), ("abi", "x86_64")];
    assert_eq!(value(&body, "tracer_syscalls_total", &getppid), Some(500.0));
    // Every call is timed (--exact-latency): each is in the latency histogram, whose
    // classic buckets are cumulative up to +Inf.
    let mut inf = getppid.to_vec();
    inf.push(("le", "+Inf"));
    let count = value(&body, "tracer_syscall_duration_seconds_count", &getppid).unwrap();
    assert_eq!(
        value(&body, "tracer_syscall_duration_seconds_bucket", &inf),
        Some(count)
    );
    assert_eq!(count, 500.0);
    assert_eq!(value(&body, "tracer_process_exits_total", &who), Some(1.0));
    assert!(value(&body, "tracer_self_cpu_seconds_total", &[]).unwrap() > 0.0);
    assert!(value(&body, "tracer_self_kernel_map_bytes", &[]).unwrap() > 1e6);
}

impl Served {
    fn tracer_alive(&self) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(self.tracer.id() as i32, 0) == 0 }
    }
}

/// /healthz answers; other paths and methods are refused; the exposition is OpenMetrics.
#[test]
fn the_endpoint_serves_metrics_and_health_only() {
    let Some(_g) = ebpf_test() else { return };
    let s = serve(&["--", WORKLOAD, "paced", "100", "50"]);
    let (status, _, body) = get(&format!("{}/healthz", s.base));
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, kind, body) = get(&format!("{}/metrics", s.base));
    assert_eq!(status, 200);
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert_eq!(get(&format!("{}/nothing", s.base)).0, 404);
    let posted = http()
        .post(&format!("{}/metrics", s.base))
        .send("x")
        .unwrap();
    assert_eq!(posted.status().as_u16(), 405);
    // Without --output, -o or --sink, a serving run writes no report.
    assert!(stop(s).stdout.is_empty());
}

/// With a pid label, 300 children forked one after another (each its own series) and a
/// limit of 200 series: the endpoint never exports more than its limit (beside tracer's
/// own families), and counts what it had to leave out.
#[test]
fn series_stay_under_their_limit_while_processes_churn() {
    let Some(_g) = ebpf_test() else { return };
    let limit = 200;
    let s = serve(&[
        "--follow",
        "--metrics-pid",
        "--max-series",
        &limit.to_string(),
        "--processes",
        "1000",
        "--",
        WORKLOAD,
        "forks",
        "300",
        "10",
    ]);
    let mut most = 0;
    let body = scrape_until(&s.base, |t| {
        let own = [
            "tracer_lost_events_total",
            "tracer_series_overflow_total",
            "tracer_series",
            "tracer_reports_total",
            "tracer_self_cpu_seconds_total",
            "tracer_self_rss_bytes",
            "tracer_self_kernel_map_bytes",
        ];
        let is_own = |k: &String| own.contains(&k.split_once('{').map_or(k.as_str(), |(n, _)| n));
        let all = samples(t);
        let n = all.iter().filter(|(k, _)| !is_own(k)).count();
        assert!(n <= limit, "{n} series: {t}");
        // tracer's own: 19 series in every scrape, the 12 causes of lost events among
        // them (tests/prometheus.rs bounds a scrape's samples with this).
        assert_eq!(all.len() - n, 19, "{t}");
        most = most.max(n);
        value(t, "tracer_process_exits_total", &[]).is_some_and(|n| n >= 301.0)
    });
    assert!(most > limit / 2, "{most}");
    assert_eq!(
        value(&body, "tracer_series", &[("of", "limit")]),
        Some(limit as f64)
    );
    assert!(value(&body, "tracer_series", &[("of", "used")]).unwrap() <= limit as f64);
    assert!(value(&body, "tracer_series_overflow_total", &[]).unwrap() > 0.0);
    stop(s);
}

/// Event loops and blocked time by cause (issue 15) are exported: a poll loop of 50
/// iterations (51 with the runtime's own poll before main), one of them a 300 ms stall;
/// and its blocked time, in poll's event waits.
#[test]
fn loops_and_blocked_causes_are_exported() {
    let Some(_g) = ebpf_test() else { return };
    let s = serve(&["--", WORKLOAD, "loop", "50", "2", "20", "300"]);
    let who = [("service", "tracer-workload"), ("comm", "tracer-workload")];
    let body = scrape_after_exit(&s, &who);
    stop(s);
    assert_eq!(value(&body, "tracer_loop_stalls_total", &who), Some(1.0));
    assert_eq!(
        value(&body, "tracer_loop_iteration_seconds_count", &who),
        Some(51.0)
    );
    // 49 iterations of 2 ms and one of 300 ms at least (more on an emulated CPU).
    let busy = value(&body, "tracer_loop_iteration_seconds_sum", &who).unwrap();
    assert!((0.39..2.0).contains(&busy), "{busy}");
    // Blocked in poll (5 ms timeouts, 51 of them): event waits, about a quarter second.
    let mut l = who.to_vec();
    l.push(("cause", "event_wait"));
    let waits = value(&body, "tracer_blocked_seconds_total", &l).unwrap();
    assert!((0.2..1.0).contains(&waits), "{waits}");
    l[2] = ("cause", "lock");
    assert_eq!(value(&body, "tracer_blocked_seconds_total", &l), Some(0.0));
}
