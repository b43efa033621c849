//! Event loops (issue 15): the busy time of each iteration between two waits, stalls with
//! their time and what the thread did, and a stall still going on; on a loop whose
//! iterations are known (`workload/loops.rs`) and on a node HTTP server whose route
//! blocks its event loop for 2 s.
mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::Stdio,
    time::{Duration, Instant, SystemTime},
};

use common::*;
use serde_json::Value;

/// Runs `tracer ARGS -- WORKLOAD loop ...` with JSON to a file: (its reports, the
/// workload's output).
fn traced_loop(args: &[&str], work: &[&str]) -> (Vec<Value>, String) {
    let json = std::env::temp_dir().join(format!(
        "tracer-loops-{}-{}.json",
        std::process::id(),
        work.join("-")
    ));
    let out = run(tracer()
        .args(["--output", "json", "-o"])
        .arg(&json)
        .args(args)
        .args(["--", WORKLOAD, "loop"])
        .args(work));
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    let reports = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (reports, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn stalls(r: &Value) -> Vec<&Value> {
    r["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "stall")
        .collect()
}

fn said(out: &str, key: &str) -> u64 {
    let words: Vec<&str> = out.split_whitespace().collect();
    let i = words.iter().position(|w| *w == key).expect(key);
    words[i + 1].parse().unwrap()
}

#[test]
fn a_stalled_iteration_is_one_stall_at_its_time() {
    let Some(_g) = ebpf_test() else { return };
    // 50 iterations of 2 ms on the CPU between polls, the 20th of 300 ms.
    let (reports, out) = traced_loop(&[], &["50", "2", "20", "300"]);
    let r = reports.last().unwrap();
    let pid = r["pids"][0].as_u64().unwrap();
    let rows = r["loops"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["tid"].as_u64(), Some(pid), "the main thread: {row}");
    // Rust's runtime polls the standard descriptors once before main: the first
    // iteration runs from there to the loop's first poll.
    assert_eq!(row["iterations"], 51, "{row}");
    assert_eq!(row["stalls"], 1, "{row}");
    let max = row["max_ns"].as_u64().unwrap();
    assert!((300_000_000..330_000_000).contains(&max), "{row}");
    // Each short iteration spins 2 ms, plus poll's return and entry (a millisecond or two
    // on an emulated CPU).
    let p50 = row["p50_ns"].as_u64().unwrap();
    assert!((1_900_000..8_000_000).contains(&p50), "{row}");
    let s = stalls(r);
    assert_eq!(s.len(), 1, "{s:?}");
    let s = s[0];
    assert_eq!(
        (s["pid"].as_u64(), s["tid"].as_u64()),
        (Some(pid), Some(pid))
    );
    let busy = s["busy_ns"].as_u64().unwrap();
    assert!((300_000_000..330_000_000).contains(&busy), "{s}");
    // It began when the workload says its long iteration did (both on CLOCK_MONOTONIC).
    let began = r["start_mono_ns"].as_u64().unwrap() as f64 + s["t_s"].as_f64().unwrap() * 1e9;
    let want = said(&out, "stall_start_ns") as f64;
    assert!((began - want).abs() < 2e6, "began {began}, workload {want}");
    // Spinning: on a CPU or waiting for one, not blocked; no syscall meanwhile.
    assert_eq!(s["syscalls"], 0, "{s}");
    let ran = s["on_cpu_ns"].as_u64().unwrap() + s["runqueue_ns"].as_u64().unwrap();
    assert!(ran as f64 >= 0.9 * busy as f64, "{s}");
    assert_eq!(r["life"]["stalls"], 1);
    // With --stall off: no stall, the same iterations.
    let (reports, _) = traced_loop(&["--stall", "off"], &["50", "2", "20", "300"]);
    let r = reports.last().unwrap();
    assert!(stalls(r).is_empty());
    assert_eq!(r["loops"][0]["iterations"], 51);
    assert_eq!(r["loops"][0]["stalls"], 0);
}

#[test]
fn a_stall_going_on_is_shown_before_it_ends() {
    let Some(_g) = ebpf_test() else { return };
    // The 5th iteration spins 1.5 s: half-second reports end inside it.
    let (reports, _) = traced_loop(&["--interval", "0.5"], &["10", "2", "5", "1500"]);
    let now: Vec<u64> = reports
        .iter()
        .filter(|r| r["type"] == "interval")
        .filter_map(|r| r["loops"].as_array()?.first()?["stalled_now_ns"].as_u64())
        .collect();
    assert!(!now.is_empty(), "no interval saw the stall going on");
    assert!(
        now.iter().all(|n| (100_000_000..1_600_000_000).contains(n)),
        "{now:?}"
    );
    // It grows from one report to the next while it lasts.
    assert!(now.windows(2).all(|w| w[1] > w[0]), "{now:?}");
    let s = stalls(reports.last().unwrap());
    assert_eq!(s.len(), 1);
    assert!(s[0]["busy_ns"].as_u64().unwrap() >= 1_500_000_000);
}

/// A node HTTP server whose `/block` route spins 2 s on the event loop; `/fast` answers at
/// once. It prints its port, and exits after `/exit`.
const SERVER: &str = r#"
const http = require('http');
const server = http.createServer((req, res) => {
  if (req.url === '/block') {
    const end = Date.now() + 2000;
    while (Date.now() < end) {}
  }
  res.end('ok\n');
  if (req.url === '/exit') server.close();
});
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
"#;

fn get(port: u16, path: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.ends_with("ok\n"), "{body}");
}

#[test]
fn a_node_route_that_blocks_the_loop_is_one_stall_of_two_seconds() {
    let Some(_g) = ebpf_test() else { return };
    let Ok(node) = which_node() else {
        skip("node is not installed (Debian's nodejs package)");
        return;
    };
    let dir = std::env::temp_dir();
    let script = dir.join(format!("tracer-loops-{}.js", std::process::id()));
    let json = dir.join(format!("tracer-loops-{}-node.json", std::process::id()));
    std::fs::write(&script, SERVER).unwrap();
    // A one-second threshold: a slow (emulated) CPU can take over 100 ms to serve a
    // node's first request, a stall too, but not one of a second.
    let mut child = tracer()
        .args(["--output", "json", "--stall", "1s", "-o"])
        .arg(&json)
        .arg("--")
        .arg(&node)
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = loop {
        let l = lines.next().expect("node said nothing").unwrap();
        if let Some(p) = l.strip_prefix("port ") {
            break p.trim().parse().unwrap();
        }
    };
    let rest = std::thread::spawn(move || lines.count());
    for _ in 0..5 {
        get(port, "/fast");
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = SystemTime::now();
    let t = Instant::now();
    get(port, "/block");
    let took = t.elapsed();
    let after = SystemTime::now();
    get(port, "/fast");
    get(port, "/exit");
    let out = wait_output(child, Duration::from_secs(120));
    rest.join().unwrap();
    let _ = std::fs::remove_file(&script);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    let r: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let pid = r["pids"][0].as_u64().unwrap();
    let s = stalls(&r);
    assert_eq!(s.len(), 1, "exactly one stall, the route's: {s:?}");
    let s = s[0];
    assert_eq!(s["tid"].as_u64(), Some(pid), "on the main thread: {s}");
    let busy = s["busy_ns"].as_u64().unwrap() as f64 / 1e9;
    assert!((1.8..=2.2).contains(&busy), "{s}");
    // At the right time: the route's 2 s spin, which ran between the request and its
    // answer (by the wall clock), lies within the stalled iteration. (The iteration may
    // end after the answer: the loop goes on with the connection before it waits again;
    // and on a slow CPU it may have begun a little before the request arrived.)
    let start = humantime::parse_rfc3339(r["start"].as_str().unwrap()).unwrap();
    let began = start + Duration::from_secs_f64(s["t_s"].as_f64().unwrap());
    let ended = began + Duration::from_secs_f64(busy);
    let overlap = ended
        .min(after)
        .duration_since(began.max(before))
        .unwrap_or_default();
    assert!(
        overlap >= Duration::from_millis(1800),
        "stall {began:?}..{ended:?}, request {before:?}..{after:?} ({took:?}): {s}"
    );
    // The loop's row: the main thread, with that iteration as its longest.
    let rows = r["loops"].as_array().unwrap();
    let main = rows
        .iter()
        .find(|l| l["tid"].as_u64() == Some(pid))
        .unwrap();
    assert_eq!(main["stalls"], 1, "{main}");
    assert!(main["max_ns"].as_u64().unwrap() >= 1_800_000_000, "{main}");
}

fn which_node() -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("node"))
        .find(|p| p.is_file())
        .ok_or(())
}

/// Runs `node -e SCRIPT` under `tracer --threads --interval 0.2` with
/// `UV_THREADPOOL_SIZE=4`: each report's pools (the final report's last), the one made
/// last (libuv's, created at its first task, after V8's workers) first in each.
fn node_pools(script: &str) -> Vec<Vec<Value>> {
    let node = which_node().unwrap();
    let out = run(tracer()
        .env("UV_THREADPOOL_SIZE", "4")
        .args(["--threads", "--output", "json", "--interval", "0.2", "--"])
        .arg(&node)
        .args(["-e", script]));
    final_report(&out);
    json_lines(&out)
        .iter()
        .map(|r| {
            let mut pools = r["sched"]["pools"].as_array().cloned().unwrap_or_default();
            pools.sort_by_key(|p| std::cmp::Reverse(p["tids"][0].as_u64()));
            pools
        })
        .collect()
}

/// libuv's threadpool of 4 (`UV_THREADPOOL_SIZE`) with 128 concurrent `crypto.pbkdf2`
/// (about 1.2 s of work here, so that several 0.2 s windows lie wholly inside it; with 32,
/// 0.35 s, a CI run's busiest window straddled the drain and read 0.72): the pool is four
/// threads, saturated while they work (80% or more in the live reports of that time: see
/// `roles::SATURATED` for what the rest is); with one small task and then nothing for
/// 2 s, idle over the run. The busy
/// run starts with one small task and a 1 s pause, so that each of the pool's threads
/// has waited for work once (a thread that never waited is not told from any busy thread:
/// on a slow CPU the one that ran the small task found the 32 queued when it was done;
/// with a 30 ms pause, 5.10's emulated guest once had a thread not yet at its first wait).
#[test]
fn a_saturated_threadpool_is_told_from_an_idle_one() {
    let Some(_g) = ebpf_test() else { return };
    if which_node().is_err() {
        skip("node is not installed (Debian's nodejs package)");
        return;
    }
    let busy = node_pools(
        "const c = require('crypto'); let left = 128;
         c.pbkdf2('a', 'b', 1, 64, 'sha512', () => setTimeout(() => {
           for (let i = 0; i < 128; i++)
             c.pbkdf2('a', 'b', 10000, 64, 'sha512', () => { if (--left === 0) process.exit(0); });
         }, 1000));",
    );
    let last = busy.last().unwrap();
    assert_eq!(last[0]["tids"].as_array().unwrap().len(), 4, "{last:?}");
    let tids = &last[0]["tids"];
    // The same pool in the live reports: its busiest window.
    let best = busy
        .iter()
        .filter_map(|pools| pools.iter().find(|p| &p["tids"] == tids))
        .max_by(|a, b| {
            let u = |p: &Value| p["utilisation"].as_f64().unwrap();
            u(a).total_cmp(&u(b))
        })
        .unwrap();
    assert!(best["utilisation"].as_f64().unwrap() >= 0.8, "{best}");
    assert_eq!(best["saturated"], true);
    let idle = node_pools(
        "require('crypto').randomBytes(16, () => setTimeout(() => process.exit(0), 2000));",
    );
    let pool = &idle.last().unwrap()[0];
    assert_eq!(pool["tids"].as_array().unwrap().len(), 4, "{idle:?}");
    assert!(pool["utilisation"].as_f64().unwrap() < 0.05, "{pool}");
    assert_eq!(pool["saturated"], false);
}
