//! Crashes, zombie children and orphans (issue 15's anatomy): workloads that crash in a
//! known way at a known address (`tracer-workload crash`), leave a known number of
//! children unreaped for a known time, or outlive their parent.
mod common;

use std::{
    io::{BufRead, BufReader, Write},
    time::Duration,
};

use common::*;
use serde_json::Value;

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("hex {s:?}"))
}

/// Runs `tracer-workload crash KIND` under `tracer ARGS --pid`: what the workload said
/// (tid, address, faulting function) and tracer's output.
fn crash(kind: &str, args: &[&str]) -> ((u32, u64, u64), std::process::Output, u32) {
    let mut w = ready_workload(WORKLOAD, &["crash", kind]);
    let pid = w.id();
    let (tr, _err) = attach(pid, args);
    writeln!(w.stdin.take().unwrap(), "go").unwrap();
    let mut said = String::new();
    BufReader::new(w.stdout.as_mut().unwrap())
        .read_line(&mut said)
        .unwrap();
    let f: Vec<&str> = said.split_whitespace().collect();
    assert_eq!((f.len(), f[0]), (4, "crash"), "{said}");
    let status = w.wait().unwrap();
    assert!(!status.success(), "the workload did not crash: {status:?}");
    let out = wait_output(tr, Duration::from_secs(30));
    ((f[1].parse().unwrap(), hex(f[2]), hex(f[3])), out, pid)
}

/// Each crash is reported once, with its signal, code, address, thread and instruction
/// pointer, as fatal: the process's exit by that signal followed.
#[test]
fn crashes_are_reported_with_their_address_and_thread() {
    let Some(_g) = ebpf_test() else { return };
    for (kind, signal, code, code_name) in [
        ("null", "SIGSEGV", 1, "SEGV_MAPERR"),
        ("readonly", "SIGSEGV", 2, "SEGV_ACCERR"),
        ("bus", "SIGBUS", 2, "BUS_ADRERR"),
        ("abort", "SIGABRT", -6, "SI_TKILL"),
    ] {
        let ((tid, addr, func), out, pid) = crash(kind, &["--output", "json"]);
        let r = final_report(&out);
        let crashes = r["crashes"].as_array().unwrap();
        assert_eq!(crashes.len(), 1, "{kind}: {crashes:?}");
        let c = &crashes[0];
        assert_eq!(
            (
                c["pid"].as_u64().unwrap() as u32,
                c["tid"].as_u64().unwrap() as u32,
                c["thread"].as_str().unwrap(),
                c["signal"].as_str().unwrap(),
                c["code"].as_i64().unwrap(),
                c["code_name"].as_str().unwrap(),
            ),
            (pid, tid, "crasher", signal, code, code_name),
            "{kind}: {c}"
        );
        assert_eq!(c["fatal"], true, "{kind}: {c}");
        assert_eq!(c["core_dumped"], false, "{kind}: {c}");
        assert_eq!(r["life"]["crashes"], 1, "{kind}");
        assert_eq!(r["processes"][0]["life"]["crashes"], 1, "{kind}");
        let ip = hex(c["ip"].as_str().expect("an instruction pointer"));
        if kind == "abort" {
            // abort()'s own tgkill: sent by the process, no address.
            assert_eq!(c["addr"], Value::Null, "{c}");
            assert_eq!(c["sender_pid"].as_u64(), Some(pid as u64), "{c}");
        } else {
            assert_eq!(hex(c["addr"].as_str().unwrap()), addr, "{kind}: {c}");
            assert_eq!(c["sender_pid"], Value::Null, "{c}");
            // The faulting instruction is in the faulting function, a few bytes in.
            assert!(
                (func..func + 0x40).contains(&ip),
                "{kind}: ip {ip:#x}, function at {func:#x}"
            );
        }
        // The signal is an event of its own too, and the exit by it.
        let events = r["events"].as_array().unwrap();
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "signal" && e["signal"] == signal),
            "{kind}: {events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "exit" && e["process"] == true && e["signal"] == signal),
            "{kind}: {events:?}"
        );
    }
}

/// The text report says it in one line of the life section, the thread's name escaped.
#[test]
fn a_crash_is_a_line_of_the_text_report() {
    let Some(_g) = ebpf_test() else { return };
    let ((tid, _, _), out, pid) = crash("null", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("crashed "))
        .unwrap_or_else(|| panic!("no crashed line in: {text}"));
    let want =
        format!(": process {pid}, thread {tid} (crasher): SIGSEGV SEGV_MAPERR at 0x10, ip 0x");
    assert!(line.contains(&want), "{line}");
    assert!(line.ends_with("; fatal"), "{line}");
    assert!(text.contains("(1 crashes)"), "{text}");
}
