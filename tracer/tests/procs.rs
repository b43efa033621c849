//! Each traced process has its own entry (`per_process`): its own calls and errors,
//! counted in the kernel per process, its parent, how it joined, and with the memory
//! section its RSS and descriptors from its own /proc entry; beyond `--processes N`, the
//! rest are summed as `other`.
mod common;

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::Duration,
};

use common::*;
use serde_json::Value;

fn listed(r: &Value) -> &Vec<Value> {
    r["per_process"]["listed"].as_array().unwrap()
}

fn entry(r: &Value, pid: u32) -> &Value {
    listed(r)
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("no process {pid} in {}", r["per_process"]))
}

/// Calls counted against calls made: exact, or short by at most the program runs the
/// kernel skipped (Linux 7.3 runs programs preemptibly; see `assert_calls`).
fn assert_own_calls(r: &Value, got: &Value, want: u64, who: &str) {
    let got = got.as_u64().unwrap();
    let skipped = r["drops"]["skipped_runs"].as_u64().unwrap_or(0);
    assert!(
        got <= want && want - got <= skipped,
        "{who}: {got} calls counted, {want} made ({skipped} program runs skipped)"
    );
}

/// Listed and other add up to the targets' totals.
fn assert_adds_up(r: &Value) {
    let p = &r["per_process"];
    let listed_calls: u64 = listed(r).iter().map(|e| e["calls"].as_u64().unwrap()).sum();
    let listed_errors: u64 = listed(r)
        .iter()
        .map(|e| e["errors"].as_u64().unwrap())
        .sum();
    assert_eq!(
        listed_calls + p["other"]["calls"].as_u64().unwrap(),
        r["totals"]["calls"].as_u64().unwrap(),
        "{p}"
    );
    assert_eq!(
        listed_errors + p["other"]["errors"].as_u64().unwrap(),
        r["totals"]["errors"].as_u64().unwrap(),
        "{p}"
    );
}

fn vm_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

/// `--follow` on a parent whose 3 children exist before tracing starts: each child is an
/// entry of its own with exactly its calls (child i makes i × 1000 getppid and one write),
/// its parent, and the RSS and descriptors its /proc entry shows.
#[test]
fn followed_children_each_have_their_own_numbers() {
    let Some(_g) = ebpf_test() else { return };
    let mut work = KillOnDrop(
        Command::new(WORKLOAD)
            .args(["household", "3", "1000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let parent = work.0.id();
    let mut out = BufReader::new(work.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let (tr, _stderr) = attach(parent, &["--output", "json", "--follow"]);
    let mut stdin = work.0.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let children: Vec<u32> = line
        .strip_prefix("done ")
        .unwrap_or_else(|| panic!("workload said {line:?}"))
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(children.len(), 3);
    // The children now hold still: what /proc says of them is what tracer must say.
    std::thread::sleep(Duration::from_millis(300));
    let proc_now: Vec<(u64, u64)> = children.iter().map(|&c| (vm_rss(c), fd_count(c))).collect();
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(tr.id() as i32, libc::SIGTERM) };
    let report = final_report(&wait_output(tr, Duration::from_secs(30)));
    stdin.write_all(b"end\n").unwrap();
    assert!(work.0.wait().unwrap().success());

    assert_eq!(
        report["per_process"]["traced"], 4,
        "{}",
        report["per_process"]
    );
    assert_eq!(entry(&report, parent)["joined"], "attached");
    for (i, &child) in children.iter().enumerate() {
        let e = entry(&report, child);
        let n = i as u64 + 1;
        assert_own_calls(&report, &e["calls"], n * 1000 + 1, &format!("child {n}"));
        assert_eq!(e["errors"], 0);
        assert_eq!(e["joined"], "followed");
        assert_eq!(e["parent"], parent);
        assert_eq!(e["alive"], true);
        let (rss, fds) = proc_now[i];
        assert_eq!(e["fds"], fds, "child {n}: descriptors against /proc");
        let got = e["rss_bytes"].as_u64().unwrap();
        assert!(
            got.abs_diff(rss) <= 64 << 10,
            "child {n}: rss {got} against /proc's {rss}"
        );
    }
    // Their memory differs (child i holds i MiB more): the entries are not one reading.
    let rss: Vec<u64> = children
        .iter()
        .map(|&c| entry(&report, c)["rss_bytes"].as_u64().unwrap())
        .collect();
    assert!(rss[0] < rss[1] && rss[1] < rss[2], "{rss:?}");
    assert_adds_up(&report);
}

/// With `--processes 2`, the two busiest are listed and the other four summed. Each child
/// makes 100 getppid and, in glibc's fork, one set_robust_list (checked against the
/// syscall table: one per child and one for the launched parent), so 101 calls of its own.
/// The launched parent's own calls are the rest of the totals (how many depends on its
/// environment: under cargo, ld.so tries each directory of LD_LIBRARY_PATH), so whether
/// it is among the two busiest is worked out, not assumed.
#[test]
fn processes_beyond_the_limit_are_summed_as_other() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer().args([
        "--output",
        "json",
        "--follow",
        "--processes",
        "2",
        "--",
        WORKLOAD,
        "forks",
        "5",
        "100",
    ]));
    let r = final_report(&out);
    let p = &r["per_process"];
    assert_calls(&r, "getppid", 500);
    assert_calls(&r, "set_robust_list", 6);
    assert_eq!(p["traced"], 6, "{p}");
    assert_eq!(listed(&r).len(), 2, "{p}");
    assert_eq!(p["other"]["processes"], 4, "{p}");
    let mut launched = None;
    for e in listed(&r) {
        assert_eq!(e["end"]["exit_code"], 0, "{p}");
        assert_eq!(e["alive"], false, "{p}");
        if e["joined"] == "launched" {
            launched = e["pid"].as_u64();
        } else {
            assert_eq!(e["joined"], "followed", "{p}");
            assert_own_calls(&r, &e["calls"], 101, "a child");
        }
    }
    let skipped = r["drops"]["skipped_runs"].as_u64().unwrap_or(0);
    if skipped == 0 {
        // Every count exact: the parent's are the totals' rest, and the listed are the
        // two busiest of {parent, 101 × 5}.
        let total = r["totals"]["calls"].as_u64().unwrap();
        let parent = total - 5 * 101;
        let mut all = [parent, 101, 101, 101, 101, 101];
        all.sort_unstable_by(|a, b| b.cmp(a));
        let got: Vec<u64> = listed(&r)
            .iter()
            .map(|e| e["calls"].as_u64().unwrap())
            .collect();
        assert_eq!(got, all[..2], "{p}");
        assert_eq!(launched.is_some(), parent > 101, "{p}");
        assert_eq!(p["other"]["calls"], all[2..].iter().sum::<u64>(), "{p}");
    }
    let command = r["command"]["pid"].as_u64().unwrap();
    if let Some(pid) = launched {
        assert_eq!(pid, command, "{p}");
    }
    for e in listed(&r).iter().filter(|e| e["joined"] == "followed") {
        assert_eq!(e["parent"], command, "{p}");
    }
    assert_adds_up(&r);
}
