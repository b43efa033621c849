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
    // The summary's line, the last: an interval report that ends between the crash and
    // the exit (on a slow guest) has it too, not yet known fatal.
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("crashed "))
        .unwrap_or_else(|| panic!("no crashed line in: {text}"));
    let want =
        format!(": process {pid}, thread {tid} (crasher): SIGSEGV SEGV_MAPERR at 0x10, ip 0x");
    assert!(line.contains(&want), "{line}");
    assert!(line.ends_with("; fatal"), "{line}");
    assert!(text.contains("(1 crashes)"), "{text}");
}

/// The interval objects' (end, anatomy) while the process ran.
fn anatomies(out: &std::process::Output) -> Vec<(u64, Value)> {
    json_lines(out)
        .into_iter()
        .filter(|v| v["type"] == "interval")
        .filter_map(|v| {
            let a = v["processes"][0].get("anatomy")?.clone();
            (a["ended"] == false).then(|| (v["end_mono_ns"].as_u64().unwrap(), a))
        })
        .collect()
}

fn words(line: &str, first: &str) -> Vec<u64> {
    let w: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(w.first(), Some(&first), "{line}");
    w[1..].iter().map(|n| n.parse().unwrap()).collect()
}

/// Children that exited and were not reaped are counted exactly, each dated from its exit
/// (its SIGCHLD) when tracer saw it, else from the first reading that showed it; once
/// reaped, they are gone.
#[test]
fn zombie_children_are_counted_and_dated() {
    let Some(_g) = ebpf_test() else { return };
    let (early, late) = (2, 3);
    let mut w = ready_workload(WORKLOAD, &["zombies", "2", "3", "2500"]);
    let pid = w.id();
    let (tr, _err) = attach(pid, &["--interval", "0.3", "--output", "json"]);
    // Its reports are read meanwhile: a full pipe would stall it.
    let tr = std::thread::spawn(move || wait_output(tr, Duration::from_secs(30)));
    // A few readings with the early zombies only.
    std::thread::sleep(Duration::from_millis(800));
    writeln!(w.stdin.take().unwrap(), "go").unwrap();
    let mut lines = BufReader::new(w.stdout.take().unwrap()).lines();
    let t = words(&lines.next().unwrap().unwrap(), "zombies");
    let (t0, t1) = (t[0], t[1]);
    let t2 = words(&lines.next().unwrap().unwrap(), "reaped")[0];
    assert!(w.wait().unwrap().success());
    let out = tr.join().unwrap();
    let readings = anatomies(&out);
    let first_end = readings.first().expect("readings").0;
    let (mut before, mut during, mut after) = (0, 0, 0);
    for (end, a) in &readings {
        let z = &a["zombie_children"];
        let listed = z["listed"].as_array().unwrap();
        // The reading is made at the window's end, a moment after it.
        if end + 100_000_000 < t0 {
            before += 1;
            assert_eq!(z["count"], early, "{z}");
        } else if *end > t1 && end + 100_000_000 < t2 {
            during += 1;
            assert_eq!(z["count"], early + late, "{z}");
            assert_eq!(listed.len(), (early + late) as usize, "{z}");
            for c in listed {
                let s = c["zombie_s"].as_f64().unwrap();
                match c["since"].as_str().unwrap() {
                    // Exited between t0 and t1.
                    "exit" => assert!(
                        (end - t1) as f64 / 1e9 - 1e-6 <= s && s <= (end - t0) as f64 / 1e9 + 1e-6,
                        "{c} at {end}, exited in [{t0}, {t1}]"
                    ),
                    // Exited before tracing started: first seen at the first reading.
                    "first_seen" => assert!(
                        (s - (end - first_end) as f64 / 1e9).abs() < 1e-6,
                        "{c} at {end}, first reading at {first_end}"
                    ),
                    other => panic!("since {other}"),
                }
            }
            let exits = listed.iter().filter(|c| c["since"] == "exit").count();
            assert_eq!(exits, late as usize, "{z}");
        } else if *end > t2 {
            after += 1;
            assert_eq!(z["count"], 0, "{z}");
            assert!(listed.is_empty(), "{z}");
        }
    }
    assert!(
        before >= 1 && during >= 4 && after >= 1,
        "readings before {before}, during {during}, after {after}: t0 {t0} t1 {t1} t2 {t2}, {:?}",
        readings
            .iter()
            .map(|(e, a)| (*e, a["zombie_children"]["count"].clone()))
            .collect::<Vec<_>>()
    );
}

/// A traced process whose parent exits is an orphan, given to the subreaper (the test),
/// from the first reading that shows it.
#[test]
fn a_process_whose_parent_exits_is_an_orphan() {
    let Some(_g) = ebpf_test() else { return };
    // SAFETY: prctl with plain arguments; this test process reaps the orphan below.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    let mut parent = std::process::Command::new(WORKLOAD)
        .arg("orphan")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(parent.stdout.as_mut().unwrap())
        .read_line(&mut said)
        .unwrap();
    let child = words(&said, "child")[0] as u32;
    let (tr, _err) = attach(child, &["--interval", "0.3", "--output", "json"]);
    let tr = std::thread::spawn(move || wait_output(tr, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(700));
    let before_exit = mono_ns();
    writeln!(parent.stdin.take().unwrap(), "go").unwrap();
    assert!(parent.wait().unwrap().success());
    let after_exit = mono_ns();
    let out = tr.join().unwrap();
    // SAFETY: reaping the orphan, ours now.
    unsafe { libc::waitpid(child as i32, std::ptr::null_mut(), 0) };
    let me = std::process::id();
    let my_name = std::fs::read_to_string("/proc/self/comm").unwrap();
    let readings = anatomies(&out);
    let (mut before, mut after) = (0, 0);
    let mut first_orphaned = None;
    for (end, a) in &readings {
        if *end < before_exit {
            before += 1;
            assert_eq!(a["parent"], parent.id(), "{a}");
            assert_eq!(a["orphaned"], Value::Null, "{a}");
        } else if *end > after_exit {
            after += 1;
            let o = &a["orphaned"];
            assert_eq!(a["parent"], me, "{a}");
            assert_eq!(
                (&o["parent_was"], &o["parent"], o["parent_comm"].as_str()),
                (&parent.id().into(), &me.into(), Some(my_name.trim())),
                "{o}"
            );
            let first = *first_orphaned.get_or_insert(*end);
            let s = o["orphaned_s"].as_f64().unwrap();
            assert!(
                (s - (end - first) as f64 / 1e9).abs() < 1e-6,
                "{o} at {end}"
            );
        }
    }
    assert!(
        before >= 1 && after >= 3,
        "readings before {before}, after {after}"
    );
}
