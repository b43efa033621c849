//! The process's anatomy (issue 15): a workload whose parts are exactly known (tracer's
//! `anatomy`: 4 MiB of heap and 8 MiB of anonymous memory written, its executable opened 3
//! times, 2 pipes, an eventfd, an epoll, a timerfd, a TCP listener with a connection to it,
//! a UDP socket, a unix socket pair) is shown as it is, and as /proc shows it: the regions'
//! RSS add up to smaps_rollup's, the heap is maps' [heap], the descriptors are /proc/PID/fd.
mod common;

use std::{
    io::{BufRead, BufReader, Write},
    time::Duration,
};

use common::*;
use serde_json::Value;

fn kib_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{key} in {text}"))
        * 1024
}

#[test]
fn a_known_process_is_shown_as_proc_shows_it() {
    let Some(_g) = ebpf_test() else { return };
    let mut w = ready_workload(WORKLOAD, &["anatomy"]);
    let pid = w.id();
    let (tr, _err) = attach(pid, &["--interval", "0.5", "--output", "json"]);
    let mut stdin = w.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    let mut done = String::new();
    BufReader::new(w.stdout.as_mut().unwrap())
        .read_line(&mut done)
        .unwrap();
    let ports: Vec<&str> = done.split_whitespace().skip(1).collect();
    assert_eq!(ports.len(), 2, "{done}");
    // Two whole intervals after the workload's parts are all made.
    std::thread::sleep(Duration::from_millis(1300));
    // /proc's own view, now.
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let heap_size: u64 = maps
        .lines()
        .filter(|l| l.ends_with("[heap]"))
        .map(|l| {
            let (a, b) = l
                .split_whitespace()
                .next()
                .unwrap()
                .split_once('-')
                .unwrap();
            u64::from_str_radix(b, 16).unwrap() - u64::from_str_radix(a, 16).unwrap()
        })
        .sum();
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| {
            std::fs::read_link(e.unwrap().path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    // Readings from before this are of the idle workload: closing its stdin wakes it to
    // exit, and a reading taken then finds it running (seen once under emulation).
    let idle_until =
        humantime::format_rfc3339_micros(std::time::SystemTime::now() - Duration::from_millis(200))
            .to_string();
    drop(stdin);
    w.wait().unwrap();
    let out = wait_output(tr, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let running: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "interval")
        .filter(|v| v["end"].as_str().is_some_and(|e| e < idle_until.as_str()))
        .filter_map(|v| v["processes"][0].get("anatomy"))
        .filter(|a| a["ended"] == false)
        .collect();
    let a = *running
        .last()
        .expect("an interval with the process running, before its stdin was closed");

    // Who it is.
    assert_eq!(a["parent"], std::process::id());
    assert_eq!(
        (a["euid"].as_u64(), a["user"].as_str()),
        (Some(0), Some("root"))
    );
    assert_eq!(a["threads"], 1);
    assert!(
        a["state"].as_str().unwrap().starts_with('S'),
        "{}",
        a["state"]
    );

    // Memory: the regions add up to smaps_rollup's RSS (the workload is idle: a page or
    // two of difference at most), the heap is maps' [heap] with the 4 MiB written in it,
    // the anonymous region grew by the 8 MiB mapped and written after tracing started.
    let rss = kib_field(&rollup, "Rss:");
    let total = a["rss_bytes"].as_u64().unwrap();
    assert!(
        total.abs_diff(rss) <= 16384,
        "regions {total} vs smaps_rollup {rss}"
    );
    let r = &a["regions"];
    let sum: u64 = r
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["rss_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, total);
    assert_eq!(r["heap"]["size_bytes"].as_u64(), Some(heap_size));
    assert!(
        r["heap"]["rss_bytes"].as_u64().unwrap() >= 4 << 20,
        "{}",
        r["heap"]
    );
    let grown = r["heap"]["rss_growth_bytes"].as_i64().unwrap();
    assert!(
        (4 << 20..(4 << 20) + (1 << 20)).contains(&grown),
        "heap grew {grown}"
    );
    let grown = r["anon"]["rss_growth_bytes"].as_i64().unwrap();
    assert!(
        (8 << 20..(8 << 20) + (1 << 20)).contains(&grown),
        "anon grew {grown}"
    );
    assert!(
        r["text"]["rss_bytes"].as_u64().unwrap() > 0 && r["libs"]["mappings"].as_u64().unwrap() > 0,
        "{r}"
    );

    // Descriptors: as many as /proc/PID/fd lists; the workload's own, exactly.
    let f = &a["fds"];
    assert_eq!(f["total"].as_u64(), Some(fds.len() as u64), "{fds:?}");
    let by = &f["by_type"];
    for (kind, n) in [("eventfd", 1), ("epoll", 1), ("timerfd", 1), ("socket", 6)] {
        assert_eq!(by[kind].as_u64(), Some(n), "{kind}: {by}");
    }
    let pipes = fds.iter().filter(|l| l.starts_with("pipe:")).count() as u64;
    assert_eq!(by["pipe"].as_u64(), Some(pipes));
    assert!(pipes >= 4, "{fds:?}");
    let s = &f["sockets"];
    for (k, n) in [
        ("tcp LISTEN", 1),
        ("tcp ESTABLISHED", 2),
        ("udp UNCONNECTED", 1),
        ("unix CONNECTED", 2),
    ] {
        assert_eq!(s[k].as_u64(), Some(n), "{k}: {s}");
    }
    let exe = std::fs::canonicalize(WORKLOAD).unwrap();
    assert_eq!(f["top_paths"][0]["name"].as_str(), exe.to_str());
    assert_eq!(f["top_paths"][0]["count"], 3);
    assert_eq!(
        f["listening"],
        serde_json::json!([
            format!("tcp 127.0.0.1:{}", ports[0]),
            format!("udp 127.0.0.1:{}", ports[1])
        ])
    );
    let peers: Vec<&str> = f["top_peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(peers.len(), 2, "{peers:?}");
    assert!(
        peers.contains(&format!("127.0.0.1:{}", ports[0]).as_str()),
        "{peers:?}"
    );
    // Loopback only: no warning, even as root.
    assert_eq!(a["warnings"], serde_json::json!([]));

    // The final object: its last reading, said to be of a process that has ended.
    let fin = final_report(&out);
    assert_eq!(fin["processes"][0]["anatomy"]["ended"], true);
    assert_eq!(
        fin["processes"][0]["anatomy"]["fds"]["by_type"]["timerfd"],
        1
    );
}
