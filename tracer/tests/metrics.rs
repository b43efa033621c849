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
    scrape_after_exits(s, who, 1)
}

/// As [`scrape_after_exit`], once `exited` processes of the service have exited.
fn scrape_after_exits(s: &Served, who: &[(&str, &str)], exited: u64) -> String {
    let exits = |t: &str| value(t, "tracer_process_exits_total", who);
    let body = scrape_until(&s.base, |t| exits(t) == Some(exited as f64));
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

/// One sample of an exposition: its name (the family's, or with `_total`, `_bucket`,
/// `_sum`, `_count`), its labels and its value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }
}

/// An exposition's samples by family (the name of the `# TYPE` line before them).
fn by_family(text: &str) -> BTreeMap<String, Vec<Sample>> {
    let mut out: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    let mut family = String::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            family = t.split(' ').next().unwrap().to_string();
            out.entry(family.clone()).or_default();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, v) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match key.split_once('{') {
            Some((n, l)) => (n, parse_labels(l.strip_suffix('}').unwrap())),
            None => (key, BTreeMap::new()),
        };
        assert!(name.starts_with(&family), "{line} after # TYPE {family}");
        out.get_mut(&family).unwrap().push(Sample {
            name: name.to_string(),
            labels,
            value: v.parse().unwrap_or_else(|_| panic!("{line}")),
        });
    }
    out
}

/// `k="v",k2="v2"`, the values unescaped (`\\`, `\"`, `\n`).
fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (k, after) = rest.split_once("=\"").unwrap();
        let mut v = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().unwrap() {
                (i, '"') => break i,
                (_, '\\') => match chars.next().unwrap().1 {
                    'n' => v.push('\n'),
                    c => v.push(c),
                },
                (_, c) => v.push(c),
            }
        };
        assert!(out.insert(k.to_string(), v).is_none(), "{k} twice in {s}");
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    out
}

/// The `families` workload (see tracer-workload): a run of it served (`--exact-latency`,
/// so that every call is in the latency histograms, and `--follow`, beside `extra`) with a
/// JSON sink of the same run; once its 5 processes (itself, 3 children, one that aborts)
/// have exited and one more interval passed, one scrape. Then tracer is stopped: the
/// exposition, the final JSON object, the number of interval objects before it, and
/// tracer's RSS (VmRSS) and CPU seconds (utime + stime, /proc's clock ticks) read just
/// after the scrape.
fn families_run(extra: &[&str]) -> (String, serde_json::Value, usize, f64, f64) {
    let file = std::env::temp_dir().join(format!(
        "tracer-metrics-families-{}-{}.ndjson",
        std::process::id(),
        extra.len()
    ));
    let _ = std::fs::remove_file(&file);
    let sink = format!("json:{}", file.display());
    let mut args = vec!["--sink", &sink, "--exact-latency", "--follow"];
    args.extend(extra);
    args.extend(["--", WORKLOAD, "families", "500", "100", "7", "3"]);
    let s = serve(&args);
    let who = [("service", "tracer-workload"), ("comm", "tracer-workload")];
    let body = scrape_after_exits(&s, &who, 5);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.tracer.id())).unwrap();
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", s.tracer.id())).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    // utime and stime are fields 14 and 15 of stat(5): 12 and 13 after the name.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let cpu_s = ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    stop(s);
    let text = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = lines.last().unwrap().clone();
    assert_eq!(last["type"], "final", "{text}");
    let intervals = lines.iter().filter(|l| l["type"] == "interval").count();
    (body, last, intervals, rss_kib * 1024.0, cpu_s)
}

/// The label keys tracer may export (README, "Metrics"): the service's two, each family's
/// own (syscall, abi, errno; kind, state, cause, type, limit, signal; of, program), the
/// histograms' `le`, `pid` with `--metrics-pid` only and `program` with `--bpf-stats` only. Their values are names from fixed
/// tables, numbers, or a process's name: never a path or an argument.
fn assert_labels_bounded(text: &str, report: &serde_json::Value, pid_label: bool, bpf_stats: bool) {
    let mut keys = std::collections::BTreeSet::new();
    // The causes: the report's lost events (`drops`) and blocked time (`blocked_by`, but
    // for its two sums).
    let keys_of =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let lost = keys_of(&report["drops"]);
    let blocked: Vec<String> = keys_of(&report["processes"][0]["sched"]["blocked_by"])
        .iter()
        .filter_map(|k| k.strip_suffix("_ns"))
        .filter(|k| !k.starts_with("waiting_"))
        .map(String::from)
        .collect();
    assert_eq!((lost.len(), blocked.len()), (12, 9), "{lost:?} {blocked:?}");
    let name = |v: &str| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    for (family, samples) in by_family(text) {
        for s in samples {
            for (k, v) in &s.labels {
                keys.insert(k.clone());
                let ok = match k.as_str() {
                    "service" | "comm" => v == "tracer-workload",
                    "syscall" | "program" => name(v),
                    "abi" => ["x86_64", "i386", "x32"].contains(&v.as_str()),
                    "errno" => {
                        v.len() > 1
                            && v.starts_with('E')
                            && v.bytes()
                                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                    }
                    "kind" => [
                        "voluntary",
                        "involuntary",
                        "minor",
                        "major",
                        "rate",
                        "error_rate",
                        "p99",
                        "new_errno",
                    ]
                    .contains(&v.as_str()),
                    "state" => ["on_cpu", "runqueue", "blocked"].contains(&v.as_str()),
                    "cause" if family == "tracer_lost_events" => lost.contains(v),
                    "cause" => blocked.contains(v),
                    "type" => ["anon", "file", "shmem"].contains(&v.as_str()),
                    "limit" => ["cgroup", "rlimit_as", "rlimit_data"].contains(&v.as_str()),
                    "signal" => [
                        "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGTRAP", "SIGSYS",
                    ]
                    .contains(&v.as_str()),
                    "of" => ["used", "limit"].contains(&v.as_str()),
                    "pid" => v == "other" || v.parse::<u32>().is_ok(),
                    "le" => v == "+Inf" || v.parse::<f64>().is_ok(),
                    _ => false,
                };
                assert!(ok, "{family}: label {k}={v:?} in {}", s.name);
                // The workload's argument and the path it opens (/), and its own path.
                assert!(!v.contains('/') && v != "families", "{family}: {k}={v:?}");
            }
        }
    }
    let mut want: std::collections::BTreeSet<String> = [
        "service", "comm", "syscall", "abi", "errno", "kind", "state", "cause", "type", "limit",
        "signal", "of", "program", "le",
    ]
    .map(String::from)
    .into();
    if pid_label {
        want.insert("pid".into());
    }
    if !bpf_stats {
        want.remove("program");
    }
    assert_eq!(keys, want, "label keys");
}

/// `a`, a number of seconds, is `ns` nanoseconds within rounding.
fn assert_seconds(what: &str, a: f64, ns: &serde_json::Value) {
    let ns = ns.as_u64().unwrap_or_else(|| panic!("{what}: {ns}"));
    assert!(
        (a * 1e9 - ns as f64).abs() <= 1.0 + ns as f64 * 1e-12,
        "{what}: {a} s, the report's {ns} ns"
    );
}

/// A histogram's samples (classic buckets, `_sum`, `_count`) of one label set: its count
/// and sum, with its buckets checked to be cumulative up to `+Inf`, which is the count.
fn hist(samples: &[Sample], labels: &[(&str, &str)]) -> (f64, f64) {
    let mine: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            let n = s.labels.len() - usize::from(s.labels.contains_key("le"));
            n == labels.len() && labels.iter().all(|(k, v)| s.label(k) == *v)
        })
        .collect();
    let one = |suffix: &str| {
        let v: Vec<f64> = mine
            .iter()
            .filter(|s| s.name.ends_with(suffix))
            .map(|s| s.value)
            .collect();
        assert_eq!(v.len(), 1, "{labels:?}{suffix}: {mine:?}");
        v[0]
    };
    let (count, sum) = (one("_count"), one("_sum"));
    let buckets: Vec<&Sample> = mine
        .iter()
        .filter(|s| s.name.ends_with("_bucket"))
        .copied()
        .collect();
    assert!(buckets.len() > 2, "{labels:?}: {mine:?}");
    assert!(
        buckets.windows(2).all(|w| w[0].value <= w[1].value),
        "{labels:?}: buckets not cumulative {buckets:?}"
    );
    let last = buckets.last().unwrap();
    assert_eq!(
        (last.label("le"), last.value),
        ("+Inf", count),
        "{labels:?}"
    );
    (count, sum)
}

/// Every family the endpoint exports, each checked against the final JSON report of the
/// same run (`--sink json:FILE`): counts equal, seconds within rounding, gauges equal to
/// the report's last reading, and the workload's known counts where it has them (530
/// getppid: 500 and 10 in each of 3 children; 7 openat failing with EISDIR, a new errno;
/// 100 sleeps; 5 processes of which 4 started while traced and one aborted; an event loop
/// of 20 iterations, one a stall); tracer's own cost present and plausible. A family
/// scraped that this test does not check, or one checked that was not scraped, fails it:
/// a new family must be added here (the unit test `every_family_is_checked_by_tests_metrics`
/// in sink/metrics.rs holds the names of `families()` to this file).
#[test]
fn every_family_holds_what_the_final_report_holds() {
    let Some(_g) = ebpf_test() else { return };
    let (text, r, intervals, rss, cpu_after) = families_run(&["--metrics-pid", "--bpf-stats"]);
    assert_labels_bounded(&text, &r, true, true);
    let mut scraped = by_family(&text);
    let mut checked = Vec::new();
    let mut take = |name: &'static str| -> Vec<Sample> {
        checked.push(name);
        scraped
            .remove(name)
            .unwrap_or_else(|| panic!("{name} not exported: {text}"))
    };
    // Counted only in the OTLP push (--otlp), whose copy of the state counts its
    // failures: never on the endpoint.
    let not_served = ["tracer_otlp_push_failures"];
    let p = &r["processes"][0];
    assert_eq!(r["processes"].as_array().unwrap().len(), 1, "{r}");
    let who = [("service", "tracer-workload"), ("comm", "tracer-workload")];
    let mine = |s: &Sample| who.iter().all(|(k, v)| s.label(k) == *v);
    // One series of `family` with `labels` beside the service's: its value.
    let one = |samples: &[Sample], labels: &[(&str, &str)]| -> f64 {
        let v: Vec<f64> = samples
            .iter()
            .filter(|s| {
                mine(s)
                    && s.labels.len() == who.len() + labels.len()
                    && labels.iter().all(|(k, v)| s.label(k) == *v)
            })
            .map(|s| s.value)
            .collect();
        assert_eq!(v.len(), 1, "{labels:?}: {samples:?}");
        v[0]
    };
    // A family of one series without labels: its value.
    let only = |samples: &[Sample]| -> f64 {
        assert!(
            samples.len() == 1 && samples[0].labels.is_empty(),
            "{samples:?}"
        );
        samples[0].value
    };
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("{v}")) as f64;

    // Syscalls by syscall, errors by errno, latency: the report's rows, no more, no less.
    let calls = take("tracer_syscalls");
    let errors = take("tracer_syscall_errors");
    let latency = take("tracer_syscall_duration_seconds");
    let rows = p["syscalls"].as_array().unwrap();
    assert_eq!(calls.len(), rows.len(), "{calls:?}");
    let mut errnos = 0;
    for row in rows {
        let (name, abi) = (row["name"].as_str().unwrap(), row["abi"].as_str().unwrap());
        let sc = [("syscall", name), ("abi", abi)];
        assert_eq!(one(&calls, &sc), n(&row["calls"]), "{name}");
        for (e, k) in row["errnos"].as_object().unwrap() {
            assert_eq!(
                one(&errors, &[sc[0], sc[1], ("errno", e)]),
                n(k),
                "{name} {e}"
            );
            errnos += 1;
        }
        // Every call timed (--exact-latency): the histogram holds them all.
        assert_eq!(row["timed"], row["calls"], "{row}");
        let mut l = who.to_vec();
        l.extend(sc);
        let (count, sum) = hist(&latency, &l);
        assert_eq!(count, n(&row["timed"]), "{name}");
        assert_seconds(name, sum, &row["total_ns"]);
    }
    assert_eq!(errors.len(), errnos, "{errors:?}");
    assert!(latency.iter().all(mine));
    let x86 = |name| [("syscall", name), ("abi", "x86_64")];
    assert_eq!(one(&calls, &x86("getppid")), 530.0);
    assert_eq!(one(&calls, &x86("clock_nanosleep")), 100.0);
    let eisdir = [
        ("syscall", "openat"),
        ("abi", "x86_64"),
        ("errno", "EISDIR"),
    ];
    assert_eq!(one(&errors, &eisdir), 7.0);
    // The sleeps: 3 ms each at least.
    let (count, sum) = hist(
        &latency,
        &[
            who[0],
            who[1],
            x86("clock_nanosleep")[0],
            x86("clock_nanosleep")[1],
        ],
    );
    assert!(count == 100.0 && sum >= 0.3, "{count} sleeps, {sum} s");

    // Scheduling: switches, time by state and by cause, the run-queue histogram.
    let sched = &p["sched"];
    let switches = take("tracer_context_switches");
    assert_eq!(switches.len(), 2);
    assert_eq!(
        one(&switches, &[("kind", "voluntary")]),
        n(&sched["voluntary_switches"])
    );
    assert_eq!(
        one(&switches, &[("kind", "involuntary")]),
        n(&sched["involuntary_switches"])
    );
    // 100 sleeps, 4 waits for a child, 21 polls, a join at least.
    assert!(one(&switches, &[("kind", "voluntary")]) >= 100.0);
    let cpu = take("tracer_cpu_seconds");
    assert_eq!(cpu.len(), 3);
    for (state, ns) in [
        ("on_cpu", &sched["on_cpu_ns"]),
        ("runqueue", &sched["runqueue"]["total_ns"]),
        ("blocked", &sched["blocked_ns"]),
    ] {
        assert_seconds(state, one(&cpu, &[("state", state)]), ns);
    }
    let blocked = take("tracer_blocked_seconds");
    assert_eq!(blocked.len(), 9);
    for s in &blocked {
        let cause = s.label("cause");
        assert_seconds(cause, s.value, &sched["blocked_by"][format!("{cause}_ns")]);
    }
    assert!(one(&blocked, &[("cause", "sleep")]) >= 0.3, "{blocked:?}");
    let runq = take("tracer_runqueue_wait_seconds");
    let (count, sum) = hist(&runq, &who);
    assert_eq!(count, n(&sched["runqueue"]["count"]));
    assert_seconds("run queue", sum, &sched["runqueue"]["total_ns"]);

    // Memory and descriptors: the last reading, faults summed.
    let mem = &p["memory"];
    let rss_by = take("tracer_rss_bytes");
    assert_eq!(rss_by.len(), 3);
    for t in ["anon", "file", "shmem"] {
        let got = one(&rss_by, &[("type", t)]);
        assert_eq!(got, n(&mem["rss"]["end"][format!("{t}_bytes")]), "{t}");
    }
    // Some of it is there (in the matrix's guests the binaries lie in an initramfs: their
    // pages are shmem, and file RSS is 0).
    assert!(rss_by.iter().map(|s| s.value).sum::<f64>() > 0.0);
    let faults = take("tracer_page_faults");
    assert_eq!(faults.len(), 2);
    for k in ["minor", "major"] {
        assert_eq!(
            one(&faults, &[("kind", k)]),
            n(&mem["page_faults"][k]),
            "{k}"
        );
    }
    assert!(one(&faults, &[("kind", "minor")]) > 0.0);
    let fds = &p["fds"];
    let open = if fds["proc_now"].is_null() {
        &fds["end"]
    } else {
        &fds["proc_now"]
    };
    assert_eq!(one(&take("tracer_open_fds"), &[]), n(open));
    assert_eq!(one(&take("tracer_fd_limit"), &[]), n(&fds["limit"]));
    let zombies = &p["anatomy"]["zombie_children"]["count"];
    assert_eq!(one(&take("tracer_zombie_children"), &[]), n(zombies));
    let limits = take("tracer_memory_limit_bytes");
    let mut held = 0;
    for (k, v) in [
        ("cgroup", &mem["limits"]["cgroup"]["limit_bytes"]),
        ("rlimit_as", &mem["limits"]["rlimit_as_bytes"]),
        ("rlimit_data", &mem["limits"]["rlimit_data_bytes"]),
    ] {
        if !v.is_null() {
            assert_eq!(one(&limits, &[("limit", k)]), n(v), "{k}");
            held += 1;
        }
    }
    assert_eq!(limits.len(), held, "{limits:?}");
    // The workload's own RLIMIT_DATA: 64 GiB.
    assert_eq!(
        one(&limits, &[("limit", "rlimit_data")]),
        (64u64 << 30) as f64
    );

    // Life: starts, exits, restarts, OOM kills, crashes by signal.
    let life = &p["life"];
    for (family, key) in [
        ("tracer_process_starts", "started"),
        ("tracer_process_exits", "exited"),
        ("tracer_process_restarts", "restarted"),
        ("tracer_oom_kills", "oom_kills"),
    ] {
        assert_eq!(one(&take(family), &[]), n(&life[key]), "{family}");
    }
    assert_eq!(
        (life["started"].as_u64(), life["exited"].as_u64()),
        (Some(4), Some(5))
    );
    assert_eq!(life["oom_kills"], 0);
    let crashes = take("tracer_crashes");
    let mut by_signal: BTreeMap<&str, f64> = BTreeMap::new();
    for c in r["crashes"].as_array().unwrap() {
        *by_signal.entry(c["signal"].as_str().unwrap()).or_default() += 1.0;
    }
    assert_eq!(by_signal, BTreeMap::from([("SIGABRT", 1.0)]));
    assert_eq!(crashes.len(), by_signal.len());
    for (sig, k) in by_signal {
        assert_eq!(one(&crashes, &[("signal", sig)]), k);
    }
    assert_eq!(life["crashes"], 1);

    // Anomalies begun, by kind and syscall: the report's episodes (the EISDIR, new after
    // the first interval).
    let anomalies = take("tracer_anomalies");
    let mut episodes: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for a in r["anomalies"].as_array().unwrap() {
        let key = (a["kind"].as_str().unwrap(), a["syscall"].as_str().unwrap());
        *episodes.entry(key).or_default() += 1.0;
    }
    assert_eq!(r["anomalies_omitted"], 0);
    assert!(
        episodes.contains_key(&("new_errno", "openat")),
        "{}",
        r["anomalies"]
    );
    assert_eq!(anomalies.len(), episodes.len(), "{anomalies:?}");
    for ((kind, syscall), k) in episodes {
        assert_eq!(one(&anomalies, &[("kind", kind), ("syscall", syscall)]), k);
    }

    // The event loop: its iterations and their busy time, its stalls.
    let loops = r["loops"].as_array().unwrap();
    assert_eq!(loops.len(), 1, "{loops:?}");
    let (count, sum) = hist(&take("tracer_loop_iteration_seconds"), &who);
    assert_eq!((count, n(&loops[0]["iterations"])), (20.0, 20.0));
    assert_seconds("loop busy", sum, &loops[0]["busy_ns"]);
    let stalls = one(&take("tracer_loop_stalls"), &[]);
    // The one spun iteration; more where a loaded emulated guest stretched others past
    // --stall (3 once on 6.12 beside another build): the metric is the report's count.
    assert_eq!(stalls, n(&loops[0]["stalls"]));
    assert!(stalls >= 1.0, "{stalls}");

    // Each process's calls and errors (--metrics-pid): the report's list of processes.
    let per_pid = take("tracer_process_syscalls");
    let per_pid_errors = take("tracer_process_syscall_errors");
    let listed = r["per_process"]["listed"].as_array().unwrap();
    assert_eq!(listed.len(), 5);
    assert_eq!(r["per_process"]["other"]["processes"], 0);
    assert_eq!((per_pid.len(), per_pid_errors.len()), (5, 5));
    for e in listed {
        let pid = e["pid"].to_string();
        let l = [("pid", pid.as_str())];
        assert_eq!(one(&per_pid, &l), n(&e["calls"]), "{e}");
        assert_eq!(one(&per_pid_errors, &l), n(&e["errors"]), "{e}");
    }

    // Lost events: every cause, each the report's; `skipped_runs` and
    // `life_events_missed` count any process's, so they may have grown after the scrape.
    let lost = take("tracer_lost_events");
    let drops = r["drops"].as_object().unwrap();
    assert_eq!(lost.len(), drops.len(), "{lost:?}");
    for (cause, k) in drops {
        let got = lost
            .iter()
            .find(|s| s.label("cause") == cause)
            .unwrap()
            .value;
        if ["skipped_runs", "life_events_missed"].contains(&cause.as_str()) {
            assert!(got <= n(k), "{cause}: {got}, the report's {k}");
        } else {
            assert_eq!(got, n(k), "{cause}");
        }
    }

    // The series and reports: what the endpoint took in.
    let series = take("tracer_series");
    let of = |k: &str| series.iter().find(|s| s.label("of") == k).unwrap().value;
    assert_eq!(of("limit"), 10_000.0);
    let own = [
        "tracer_lost_events",
        "tracer_series_overflow",
        "tracer_series",
        "tracer_reports",
        "tracer_self_cpu_seconds",
        "tracer_self_rss_bytes",
        "tracer_self_kernel_map_bytes",
        "tracer_bpf_program_seconds",
        "tracer_bpf_program_runs",
    ];
    let exported = by_family(&text)
        .iter()
        .filter(|(f, _)| !own.contains(&f.as_str()))
        .map(|(_, s)| s.len())
        .sum::<usize>() as f64;
    assert!(
        exported <= of("used") && of("used") <= of("limit"),
        "{exported} {series:?}"
    );
    assert_eq!(only(&take("tracer_series_overflow")), 0.0);
    let reports = only(&take("tracer_reports"));
    assert!(
        reports >= 5.0 && reports <= intervals as f64,
        "{reports} of {intervals}"
    );

    // tracer's own cost: present and plausible (not in the report). Its CPU counts from
    // its start, loading the programs too (2-3 s of CPU on an emulated guest's verifier,
    // more than the traced run lasted): at most what /proc said just after the scrape.
    let cpu = only(&take("tracer_self_cpu_seconds"));
    assert!(
        cpu > 0.0 && cpu <= cpu_after + 0.02,
        "{cpu} s of CPU, /proc says {cpu_after} s after the scrape"
    );
    let self_rss = only(&take("tracer_self_rss_bytes"));
    assert!(
        self_rss > rss / 2.0 && self_rss < rss * 2.0,
        "{self_rss} bytes, VmRSS {rss}"
    );
    let maps = only(&take("tracer_self_kernel_map_bytes"));
    assert!(maps > 1e6 && maps < 1e9, "{maps}");
    // --bpf-stats: the programs' run time and runs, for the same programs; the syscall
    // hooks ran for every call the workload made at least.
    let secs = take("tracer_bpf_program_seconds");
    let runs = take("tracer_bpf_program_runs");
    let programs = |v: &[Sample]| {
        v.iter()
            .map(|s| s.label("program").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(programs(&secs), programs(&runs));
    let total = n(&r["totals"]["calls"]);
    // The hooks run on every CPU at once: at most the run's length on each.
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    let duration = r["duration_s"].as_f64().unwrap() * cpus;
    for hook in ["sys_enter", "sys_exit"] {
        let ran = runs
            .iter()
            .find(|s| s.label("program") == hook)
            .unwrap()
            .value;
        assert!(ran >= total, "{hook}: {ran} runs, {total} calls");
        let t = secs
            .iter()
            .find(|s| s.label("program") == hook)
            .unwrap()
            .value;
        assert!(t > 0.0 && t < duration, "{hook}: {t} s");
    }

    let left: Vec<&String> = scraped.keys().collect();
    assert!(left.is_empty(), "families not checked here: {left:?}");
    for f in not_served {
        assert!(!checked.contains(&f) && !text.contains(f), "{f}");
    }
}

/// Without `--metrics-pid` no series has a `pid` label; the label keys are the bounded
/// set (README's table) and no value is a path or an argument. (With it, the test above.)
#[test]
fn labels_are_bounded_and_pid_only_when_asked() {
    let Some(_g) = ebpf_test() else { return };
    let (text, r, _, _, _) = families_run(&[]);
    assert!(!text.contains("pid=\""), "{text}");
    assert!(!text.contains("tracer_process_syscalls"), "{text}");
    assert_labels_bounded(&text, &r, false, false);
}
