//! The OTLP push (`--otlp`, issue 13) against a receiver that decodes it with
//! OpenTelemetry's own protobuf definitions (tests/support/otlp_receiver.py, with
//! opentelemetry-proto from PyPI, which `cargo xtask test` installs; no collector package
//! is reachable here). Host only: the kernel matrix's guests have no Python.
mod common;

use std::{
    io::{BufRead, BufReader, Lines, Write},
    process::{ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use serde_json::Value;

const PYTHON: &str = "/var/tmp/tracer-python/bin/python";

/// The receiver, its port, and the requests it prints.
struct Receiver {
    _child: KillOnDrop,
    port: u16,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Receiver {
    fn start(port: u16) -> Option<Receiver> {
        if !std::path::Path::new(PYTHON).exists() {
            skip(&format!(
                "{PYTHON} is not installed (cargo xtask test makes it)"
            ));
            return None;
        }
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/otlp_receiver.py"
        );
        let mut child = Command::new(PYTHON)
            .args([script, &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        Some(Receiver {
            _child: KillOnDrop(child),
            port: first["port"].as_u64().unwrap() as u16,
            lines,
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/metrics", self.port)
    }

    /// The next request it received.
    fn next(&mut self) -> Value {
        serde_json::from_str(&self.lines.next().expect("the receiver ended").unwrap()).unwrap()
    }

    /// Stops it; the requests it received that were not read yet.
    fn rest(mut self) -> Vec<Value> {
        self._child.0.kill().unwrap();
        self._child.0.wait().unwrap();
        self.lines
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect()
    }
}

/// The value of the one point named `name` whose attributes include `attrs`.
fn point<'a>(req: &'a Value, name: &str, attrs: &[(&str, &str)]) -> Option<&'a Value> {
    let found: Vec<&Value> = req["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == name && attrs.iter().all(|(k, v)| p["attrs"][k] == *v))
        .collect();
    assert!(found.len() <= 1, "{name} {attrs:?}: {found:?}");
    found.first().map(|p| &p["value"])
}

/// A launched workload with known calls, every call timed: the last push (waited for at
/// the end) carries exactly the final report's counts, as cumulative monotonic sums, the
/// latency histogram's count too; a protobuf body from service `tracer`.
#[test]
fn the_push_carries_the_reports_counts() {
    let Some(_g) = ebpf_test() else { return };
    let Some(mut rx) = Receiver::start(0) else {
        return;
    };
    let mut tr = tracer()
        .env_remove("LD_LIBRARY_PATH")
        .args(["--otlp", &rx.url(), "--output", "json", "--exact-latency"])
        .args([
            "--interval",
            "0.2",
            "--",
            WORKLOAD,
            "syscalls",
            "500",
            "20",
            "7",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _err = wait_for_stderr(&mut tr, "tracing");
    let who = [("service", "tracer-workload"), ("comm", "tracer-workload")];
    // Until the workload's exit has been pushed (tracer goes on: it feeds a collector).
    loop {
        let req = rx.next();
        if point(&req, "tracer_process_exits", &who).is_some_and(|v| v == 1) {
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tr.id() as i32, libc::SIGTERM) };
    let out = wait_output(tr, Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    let r = final_report(&out);
    // The last request: the final push, waited for before tracer ended.
    let last = rx.rest().pop().expect("no push after the workload's exit");
    assert_eq!(last["content_type"], "application/x-protobuf");
    assert_eq!(last["resource"]["service.name"], "tracer");
    let mut rows = 0;
    for row in r["syscalls"].as_array().unwrap() {
        let name = row["name"].as_str().unwrap();
        let attrs = [who[0], who[1], ("syscall", name), ("abi", "x86_64")];
        let got = point(&last, "tracer_syscalls", &attrs)
            .unwrap_or_else(|| panic!("no {name} in {last}"));
        assert_eq!(got, &row["calls"], "{name}");
        rows += 1;
    }
    assert!(rows > 5);
    let getppid = [who[0], who[1], ("syscall", "getppid"), ("abi", "x86_64")];
    assert_eq!(point(&last, "tracer_syscalls", &getppid).unwrap(), 500);
    let sums: Vec<&Value> = last["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "tracer_syscalls")
        .collect();
    // Cumulative (2 in OTLP's enum), monotonic.
    assert!(
        sums.iter()
            .all(|p| p["monotonic"] == true && p["temporality"] == 2)
    );
    let h = point(&last, "tracer_syscall_duration_seconds", &getppid).unwrap();
    assert_eq!(h["count"], 500);
    assert_eq!(
        h["buckets"].as_array().unwrap().len(),
        h["bounds"].as_array().unwrap().len() + 1
    );
}

/// A collector that refuses at the start is one line and exit 1; one that goes away
/// later is retried each interval, the failures counted and said, and tracer goes on.
#[test]
fn a_collector_that_refuses_or_goes_away() {
    let Some(_g) = ebpf_test() else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{closed}/v1/metrics");
    let out = run(tracer().args(["--otlp", &url, "--", WORKLOAD, "paced", "1", "1"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("cannot push metrics to {url}: connection refused")),
        "{err}"
    );

    let Some(mut rx) = Receiver::start(0) else {
        return;
    };
    let port = rx.port;
    let mut sleeper = KillOnDrop(Command::new("sleep").arg("60").spawn().unwrap());
    let mut tr = tracer()
        .args(["--otlp", &rx.url(), "--interval", "0.2", "--pid"])
        .arg(sleeper.0.id().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = wait_for_stderr(&mut tr, "tracing");
    rx.next();
    drop(rx); // the collector goes away
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.contains("pushing metrics to")
            && line.contains("failed (1 so far)")
            && line.contains("trying again each interval"),
        "{line}"
    );
    // It comes back on the same port: the next push says how many failed meanwhile.
    let mut rx = Receiver::start(port).unwrap();
    let req = rx.next();
    let failures = point(&req, "tracer_otlp_push_failures", &[]).unwrap();
    assert!(failures.as_u64().unwrap() >= 1, "{req}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tr.id() as i32, libc::SIGTERM) };
    assert!(wait_output(tr, Duration::from_secs(30)).status.success());
    sleeper.0.kill().unwrap();
}

/// A collector that takes the connection and never answers (a listener nothing accepts
/// from: the kernel completes the handshakes). The trace goes on at its pace while a push
/// waits; a workload attached by pid makes exactly known calls and exits; tracer, stopped
/// then, ends within the push timeout (5 s, the last push) and a margin, exit 0, with the
/// exact counts, the failure said once on stderr, counted, "trying again".
#[test]
fn a_collector_that_never_answers_holds_nothing_up() {
    let Some(_g) = ebpf_test() else { return };
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/metrics", hung.local_addr().unwrap());
    let mut work = ready_workload(WORKLOAD, &["syscalls", "500", "20", "7"]);
    let mut tr = tracer()
        .args([
            "--otlp",
            &url,
            "--output",
            "json",
            "--interval",
            "0.2",
            "--pid",
        ])
        .arg(work.id().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = wait_for_stderr(&mut tr, "tracing");
    let said = std::thread::spawn(move || err.lines().map(|l| l.unwrap()).collect::<Vec<String>>());
    let mut out = BufReader::new(tr.stdout.take().unwrap()).lines();
    let mut next = || -> serde_json::Value {
        serde_json::from_str(&out.next().expect("tracer ended").unwrap()).unwrap()
    };
    // The first push went out at the first interval and waits for its answer (5 s): ten
    // intervals (2 s) come meanwhile.
    let begun = Instant::now();
    let mut intervals = 0;
    while intervals < 10 {
        if next()["type"] == "interval" {
            intervals += 1;
        }
    }
    assert!(
        begun.elapsed() < Duration::from_secs(4),
        "10 intervals of 0.2 s took {:?}",
        begun.elapsed()
    );
    work.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert!(work.wait().unwrap().success());
    // Until an interval has the workload's calls, then stop it.
    while next()["syscalls"]
        .as_array()
        .is_none_or(|rows| !rows.iter().any(|r| r["name"] == "getppid"))
    {}
    let stopped = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tr.id() as i32, libc::SIGTERM) };
    let mut rest = Vec::new();
    for line in out {
        rest.push(serde_json::from_str::<serde_json::Value>(&line.unwrap()).unwrap());
    }
    let status = tr.wait().unwrap();
    let took = stopped.elapsed();
    let said = said.join().unwrap();
    assert!(status.success(), "{status:?}: {said:?}");
    assert!(
        took < Duration::from_secs(8),
        "tracer took {took:?} to end after SIGTERM: {said:?}"
    );
    let r = rest.last().expect("no final report");
    assert_eq!(r["type"], "final");
    assert_calls(r, "getppid", 500);
    assert_calls(r, "write", 20);
    let openat = row(r, "openat").expect("openat row");
    assert_eq!(openat["errnos"], serde_json::json!({ "ENOENT": 7 }));
    // One line for the failures (a timeout each: one kind), with its count so far.
    let failures: Vec<&String> = said
        .iter()
        .filter(|l| l.contains("pushing metrics"))
        .collect();
    assert_eq!(failures.len(), 1, "{said:?}");
    assert!(
        failures[0].contains(&format!(
            "pushing metrics to {url} failed (1 so far): no answer within 5 s; trying again each interval"
        )),
        "{said:?}"
    );
    drop(hung);
}
