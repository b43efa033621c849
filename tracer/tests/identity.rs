//! A traced process is its pid and its start time: once it has ended and another process
//! is given its pid (forced here through /proc/sys/kernel/ns_last_pid), nothing of the
//! newcomer is counted as the traced process's, in any section, with or without
//! `--follow`: not its calls, its switches, its memory, its descriptors, its threads.
mod common;

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::*;
use serde_json::Value;

/// Starts `cmd` as process `pid`: the kernel hands out the pid after the last one given,
/// so the test sets that to `pid - 1` first. Another fork on the machine may take it
/// first: then it tries again.
fn spawn_as(pid: u32, cmd: &mut Command) -> Child {
    for _ in 0..50 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let child = cmd.spawn().unwrap();
        if child.id() == pid {
            return child;
        }
        KillOnDrop(child);
    }
    panic!("could not start a process as pid {pid}");
}

/// A `--wait` workload, its stdout ready to read; returns once it has said `ready`.
fn waiting(args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(WORKLOAD)
        .arg("--wait")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    (child, out)
}

/// The stranger, started as `pid`, done with all it does and holding its memory and
/// descriptors (so that a tracer reading /proc would see them).
fn stranger_as(pid: u32) -> Child {
    let mut s = spawn_as(
        pid,
        Command::new(WORKLOAD)
            .arg("stranger")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let mut line = String::new();
    BufReader::new(s.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "done");
    // tracer reads /proc every 250 ms: give it a few readings of the stranger.
    std::thread::sleep(Duration::from_millis(800));
    s
}

/// Stops tracer (SIGTERM), then lets the stranger end; returns tracer's final report.
fn stop(tr: Child, mut stranger: Child) -> Value {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(tr.id() as i32, libc::SIGTERM) };
    let out = wait_output(tr, Duration::from_secs(30));
    stranger
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"end\n")
        .unwrap();
    stranger.wait().unwrap();
    final_report(&out)
}

fn process(r: &Value, pid: u32) -> &Value {
    r["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("no process {pid} in {}", r["processes"]))
}

/// Checks a report (or one process's entry) against the stranger's work: 20000 getppid,
/// 200 sleeps, 64 MiB, 50 descriptors; and its thread, which has pid `stranger`, is not
/// listed as a live thread.
/// `skipped`: runs of tracer's programs the kernel skipped (Linux 7.3 runs them preemptibly:
/// a short-lived process can run whole while a preempted run blocks its CPU), which can
/// only make counts short, never add a stranger's.
fn assert_nothing_of_the_stranger(
    r: &Value,
    sections: &str,
    getppid: u64,
    stranger: u32,
    skipped: u64,
) {
    let counted = calls(r, "getppid");
    assert!(
        counted <= getppid && getppid - counted <= skipped,
        "--sections {sections}: {counted} getppid of {getppid}, {skipped} runs skipped"
    );
    if let Some(s) = r.get("sched").filter(|s| !s.is_null()) {
        let v = s["voluntary_switches"].as_u64().unwrap();
        assert!(v < 100, "--sections {sections}: {v} voluntary switches");
        for t in s["threads"].as_array().into_iter().flatten() {
            assert!(
                !(t["pid"] == stranger && t["alive"] == true),
                "--sections {sections}: the stranger listed as a live thread: {t}"
            );
        }
    }
    if let Some(m) = r.get("memory").filter(|m| !m.is_null()) {
        let rss = m["rss"]["end_bytes"].as_f64().unwrap();
        assert!(rss < 32e6, "--sections {sections}: rss {rss}");
        let f = &r["fds"];
        let (start, end) = (f["start"].as_u64().unwrap(), f["end"].as_u64().unwrap());
        assert!(end <= start + 2, "--sections {sections}: descriptors {f}");
        assert!(
            f["proc_now"].as_u64().is_none_or(|n| n < 20),
            "--sections {sections}: /proc's count {f}"
        );
    }
}

#[test]
fn a_pid_given_to_another_process_is_not_the_traced_one() {
    let Some(_g) = ebpf_test() else { return };
    for sections in ["syscalls", "sched", "memory", "syscalls,sched,life,memory"] {
        // A sleeper keeps tracer running after the traced workload has ended.
        let sleeper = KillOnDrop(Command::new("sleep").arg("60").spawn().unwrap());
        let (mut work, _out) = waiting(&["syscalls", "100", "0", "0"]);
        let pid = work.id();
        let (tr, _stderr) = attach(
            sleeper.0.id(),
            &[
                "--output",
                "json",
                "--threads",
                "--sections",
                sections,
                "--pid",
                &pid.to_string(),
            ],
        );
        work.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        assert!(work.wait().unwrap().success());
        let r = stop(tr, stranger_as(pid));
        // The workload's 100 getppid, where syscalls are counted (memory counts them too).
        let getppid = if sections == "sched" { 0 } else { 100 };
        let skipped = r["drops"]["skipped_runs"].as_u64().unwrap();
        assert_nothing_of_the_stranger(&r, sections, getppid, pid, skipped);
        assert_nothing_of_the_stranger(process(&r, pid), sections, getppid, pid, skipped);
    }
}

#[test]
fn a_followed_childs_pid_given_to_another_process_is_not_followed() {
    let Some(_g) = ebpf_test() else { return };
    for sections in ["syscalls,life", "syscalls,sched,life,memory"] {
        let sleeper = KillOnDrop(Command::new("sleep").arg("60").spawn().unwrap());
        // Forks one child making 100 getppid, and says its pid once it has ended.
        let (mut work, mut out) = waiting(&["forks", "1", "100"]);
        let pid = work.id();
        let (tr, _stderr) = attach(
            sleeper.0.id(),
            &[
                "--output",
                "json",
                "--threads",
                "--follow",
                "--sections",
                sections,
                "--pid",
                &pid.to_string(),
            ],
        );
        work.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let child: u32 = line.trim().strip_prefix("child ").unwrap().parse().unwrap();
        assert!(work.wait().unwrap().success());
        let r = stop(tr, stranger_as(child));
        // The child's 100, and nothing of the stranger under the child's slot (its
        // parent's) nor anywhere else.
        let skipped = r["drops"]["skipped_runs"].as_u64().unwrap();
        assert_nothing_of_the_stranger(&r, sections, 100, child, skipped);
        assert_nothing_of_the_stranger(process(&r, pid), sections, 100, child, skipped);
        assert_eq!(
            r["followed_pids"],
            serde_json::json!([child]),
            "{}",
            r["followed_pids"]
        );
    }
}
