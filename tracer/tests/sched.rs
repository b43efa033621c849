//! Scheduling and process-life tests: they load the real programs (root; CI is root) and
//! check numbers from workloads whose sleeps, threads and children are known.
mod common;

use std::{process::Command, time::Duration};

use common::*;
use serde_json::Value;

fn sched(r: &Value) -> &Value {
    r.get("sched")
        .unwrap_or_else(|| panic!("no sched section: {r}"))
}

fn events<'a>(r: &'a Value, kind: &str) -> Vec<&'a Value> {
    r["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

/// utime + stime of a process, in clock ticks.
/// On-CPU time of a process's threads, in ns, as the scheduler itself accounts it
/// (`/proc/PID/task/*/schedstat`, first field: exact, where utime and stime are sampled at
/// ticks, and lose ticks when the CPU itself is emulated).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .map(|s| s.split_whitespace().next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn a_thousand_sleeps_are_a_thousand_voluntary_switches() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer().args(["--output", "json", "--", WORKLOAD, "sleeps", "1000", "1"]));
    let r = final_report(&out);
    let v = sched(&r)["voluntary_switches"].as_u64().unwrap();
    // A sleep may not block at all where CPUs are emulated (a virtual CPU stalled past the
    // timer's expiry: 1 in 1000 in one kernel-matrix run).
    assert!((990..1100).contains(&v), "voluntary switches: {v}");
    // Each sleep of 1 ms is blocked time: at least a second in all.
    assert!(sched(&r)["blocked_ns"].as_u64().unwrap() >= 1_000_000_000);
}

/// Blocked time by cause (issue 15), from a workload whose waits are known phase by phase
/// (`workload/blocking.rs`): 1000 ms of sleeps in three threads, a pipe read and a
/// contended glibc mutex of about 300 ms each, a vfork parent's uninterruptible wait of
/// about 400 ms, an fsync (disk I/O on the host; nothing in the kernel matrix's guests,
/// which have no disk). Each within 5% of what the workload timed itself.
#[test]
fn blocked_time_is_split_by_cause() {
    let Some(_g) = ebpf_test() else { return };
    let tmp = std::env::temp_dir();
    let json = tmp.join(format!("tracer-blocked-{}.json", std::process::id()));
    let fsync = tmp.join(format!("tracer-blocked-{}.data", std::process::id()));
    let out = run(tracer()
        .args(["--output", "json", "-o"])
        .arg(&json)
        .args(["--", WORKLOAD, "blocking"])
        .arg(&fsync));
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = said.split_whitespace().collect();
    let timed = |name: &str| -> f64 {
        let i = words.iter().position(|w| *w == name).expect(name);
        words[i + 1].parse::<f64>().unwrap() * 1e6
    };
    let (pipe, lock, vfork, fsync_ns) = (
        timed("pipe_ms"),
        timed("lock_ms"),
        timed("vfork_ms"),
        timed("fsync_ms"),
    );
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    let r: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let s = sched(&r);
    let by = &s["blocked_by"];
    let ns = |k: &str| by[k].as_u64().unwrap_or_else(|| panic!("no {k} in {by}")) as f64;
    let within = |k: &str, lo: f64, hi: f64| {
        let v = ns(k);
        assert!(
            (lo..=hi).contains(&v),
            "{k}: {v} ns, not in {lo}..{hi}; {by}; workload said {said}"
        );
    };
    within("sleep_ns", 0.95e9, 1.05e9);
    within("descriptor_ns", 0.95 * pipe, 1.05 * pipe);
    within("lock_ns", 0.95 * lock, 1.05 * lock);
    within(
        "uninterruptible_ns",
        0.95 * vfork,
        1.05 * (vfork + fsync_ns),
    );
    // The joins of the three threads are short condition waits; nothing else blocked.
    assert!(ns("condition_ns") < 0.05e9, "{by}");
    assert_eq!(ns("event_wait_ns"), 0.0, "{by}");
    assert_eq!(ns("other_syscall_ns"), 0.0, "{by}");
    // The causes add up to the blocked time, and group as idle and not.
    let parts = [
        "event_wait_ns",
        "sleep_ns",
        "condition_ns",
        "lock_ns",
        "uninterruptible_ns",
        "descriptor_ns",
        "other_syscall_ns",
        "outside_syscalls_ns",
        "unknown_ns",
    ];
    let sum: f64 = parts.iter().map(|k| ns(k)).sum();
    assert_eq!(sum, s["blocked_ns"].as_u64().unwrap() as f64, "{by}");
    assert_eq!(
        ns("waiting_for_work_ns"),
        ns("event_wait_ns") + ns("sleep_ns") + ns("condition_ns")
    );
}

#[test]
fn two_busy_threads_on_one_cpu_wait_half_the_time() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer().args([
        "--output",
        "json",
        "--threads",
        "--",
        WORKLOAD,
        "spin",
        "2",
        "2",
    ]));
    let r = final_report(&out);
    let pid = r["pids"][0].as_u64().unwrap();
    assert!(sched(&r)["involuntary_switches"].as_u64().unwrap() > 0);
    let threads = sched(&r)["threads"].as_array().unwrap();
    let spinners: Vec<&Value> = threads
        .iter()
        .filter(|t| t["tid"].as_u64() != Some(pid))
        .collect();
    assert_eq!(spinners.len(), 2, "{threads:?}");
    for t in spinners {
        let wall = t["wall_ns"].as_u64().unwrap() as f64;
        let runq = t["runqueue_ns"].as_u64().unwrap() as f64;
        let share = runq / wall;
        assert!(
            (0.40..=0.60).contains(&share),
            "run-queue share {share:.3} of {t}"
        );
        assert!(wall >= 1.9e9, "a spinner lived 2 s: {t}");
        assert!(t["involuntary_switches"].as_u64().unwrap() > 0);
        let rq = &t["runqueue"];
        assert!(
            rq["count"].as_u64().unwrap() > 0
                && rq["p50_ns"].as_u64().unwrap() <= rq["max_ns"].as_u64().unwrap()
        );
    }
    assert_life_events(&r, "threads_created", 2);
    assert_life_events(&r, "threads_ended", 3);
    assert_life_events(&r, "process_exits", 1);
}

/// Checks a count of life events: exactly `want`, unless the kernel skipped both of
/// tracer's programs for some events (`drops.life_events_missed`, seen only on Linux 7.3,
/// whose tracepoint programs run preemptibly), which can only make it short, by at most
/// that many.
fn assert_life_events(r: &Value, what: &str, want: u64) {
    let got = r["life"][what].as_u64().unwrap();
    let missed = r["drops"]["life_events_missed"].as_u64().unwrap();
    assert!(
        got <= want && want - got <= missed,
        "{what}: {got} counted, {want} happened; life {} drops {}",
        r["life"],
        r["drops"]
    );
}

/// Threads ending together on one busy CPU: on Linux 7.3 the exit tracepoint's program can
/// be preempted, and the kernel then skips its runs for the other threads ending on that
/// CPU (with one program, 2 of 6 runs of this test lost 5 of 7 exits there). A second
/// program on the hook handles those (`twin` on the kernel side); an exit is missed only
/// when the kernel skipped both, and then `drops.life_events_missed` says so (before that
/// bound existed, 1 of 12 runs in the kernel matrix's 7.3 guest counted 6 of 7).
#[test]
fn threads_ending_together_on_one_cpu_are_each_counted() {
    let Some(_g) = ebpf_test() else { return };
    let mut skipped = Vec::new();
    for _ in 0..6 {
        let out = run(tracer().args(["--output", "json", "--", WORKLOAD, "spin", "6", "1"]));
        let r = final_report(&out);
        assert_life_events(&r, "threads_created", 6);
        assert_life_events(&r, "threads_ended", 7);
        assert_life_events(&r, "process_exits", 1);
        let d = &r["drops"];
        skipped.push((
            r["life"]["threads_ended"].as_u64().unwrap(),
            d["life_events_missed"].as_u64().unwrap(),
            d["skipped_runs"].as_u64().unwrap(),
        ));
    }
    println!("by run, (exits of 7, life events missed at most, runs skipped): {skipped:?}");
}

#[test]
fn threads_keep_the_name_they_are_renamed_to() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer().args(["--output", "json", "--threads", "--", WORKLOAD, "rename"]));
    let r = final_report(&out);
    let pid = r["pids"][0].as_u64().unwrap();
    let threads = sched(&r)["threads"].as_array().unwrap();
    let name_of = |main: bool| -> Vec<&str> {
        threads
            .iter()
            .filter(|t| (t["tid"].as_u64() == Some(pid)) == main)
            .map(|t| t["comm"].as_str().unwrap())
            .collect()
    };
    assert_eq!(name_of(true), ["tracer-workload"], "{threads:?}");
    // It blocked as "named-early" before renaming itself.
    assert_eq!(name_of(false), ["renamed-late"], "{threads:?}");
}

/// `--threads` keeps each thread's counters in a preallocated kernel map of 4096 entries;
/// ended threads give theirs back once reported. 5000 threads, one after another, each
/// making 10 `getppid`s and sleeping 1 ms: none finds the map full (without the reclaim,
/// the 4097th on would), and every thread is either listed or counted as dropped from the
/// lists (tracer keeps the 1000 busiest ended ones in full).
#[test]
fn ended_threads_give_back_their_kernel_entries() {
    let Some(_g) = ebpf_test() else { return };
    // 5000 threads: more than a minute in a slow emulated guest.
    let child = tracer()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .args([
            "--output",
            "json",
            "--threads",
            "--interval",
            "0.2",
            "--sections",
            "syscalls,sched,life",
            "--",
            WORKLOAD,
            "threads",
            "5000",
            "10",
            "1",
        ])
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(300));
    let r = final_report(&out);
    assert_calls(&r, "getppid", 50_000);
    assert_eq!(r["drops"]["thread_stats_full"], 0, "{}", r["drops"]);
    let s = sched(&r);
    let listed = s["threads"].as_array().unwrap().len() as u64;
    let dropped = s["threads_dropped"].as_u64().unwrap();
    assert!(
        dropped > 0,
        "the run is long enough to reclaim: {listed} listed"
    );
    assert!(listed <= 1000 + 4096, "{listed} listed");
    assert_eq!(listed + dropped, 5001, "{listed} listed, {dropped} dropped");
}

/// A spinner's on-CPU time, interval by interval, against the scheduler's own account of
/// it between the moments the interval reports arrive (the first interval, which began
/// before tracer attached, is left out).
#[test]
fn on_cpu_time_matches_proc() {
    let Some(_g) = ebpf_test() else { return };
    // Spins until killed, however long tracer takes to start (seconds in an emulated
    // guest of the kernel matrix).
    let spinner = KillOnDrop(
        Command::new(WORKLOAD)
            .args(["spin", "1", "600"])
            .spawn()
            .unwrap(),
    );
    let pid = spinner.0.id();
    std::thread::sleep(Duration::from_millis(200));
    // The kernel's count, sampled every 5 ms with the monotonic time of each reading, so
    // that it can be read at the windows' own bounds (a report read late, as in a slow
    // emulated guest, would otherwise be compared with a later count).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut samples: Vec<(u64, u64)> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let before = mono_ns();
                let cpu = cpu_ns(pid);
                samples.push(((before + mono_ns()) / 2, cpu));
                std::thread::sleep(Duration::from_millis(5));
            }
            samples
        })
    };
    let irq_before = irq_ticks();
    let out = run(tracer().args([
        "--output",
        "json",
        "--interval",
        "1",
        "--duration",
        "4",
        "--pid",
        &pid.to_string(),
    ]));
    // Interrupts taken on any CPU meanwhile: the kernel's runtime leaves them out
    // (IRQ_TIME_ACCOUNTING), tracer's on-CPU time (switch to switch) does not. Little on
    // a host; an emulated guest's timer interrupts cost up to a tenth of its time.
    let irq_s = (irq_ticks() - irq_before) as f64 / 100.0;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    drop(spinner);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The kernel's count at monotonic time t: interpolated between the samples around it.
    let at = |t: u64| -> f64 {
        let i = samples.partition_point(|s| s.0 <= t);
        assert!(i > 0 && i < samples.len(), "no samples around {t}");
        let ((t0, c0), (t1, c1)) = (samples[i - 1], samples[i]);
        c0 as f64 + (c1 - c0) as f64 * (t - t0) as f64 / (t1 - t0).max(1) as f64
    };
    let intervals: Vec<Value> = json_lines(&out)
        .into_iter()
        .filter(|v| v["type"] == "interval")
        .collect();
    assert!(intervals.len() >= 3, "{intervals:?}");
    // From the second window on (the first one's start is tracer attaching).
    let ours: u64 = intervals[1..]
        .iter()
        .map(|v| sched(v)["on_cpu_ns"].as_u64().unwrap())
        .sum();
    let (first, last) = (&intervals[1], intervals.last().unwrap());
    let kernel =
        at(last["end_mono_ns"].as_u64().unwrap()) - at(first["start_mono_ns"].as_u64().unwrap());
    let (ours, kernel) = (ours as f64 / 1e9, kernel / 1e9);
    assert!(
        kernel > 1.0,
        "the spinner should have run much of the window: {kernel}"
    );
    assert!(
        ours > kernel * 0.95 && ours < kernel * 1.05 + irq_s,
        "tracer {ours:.3} s vs the kernel's {kernel:.3} s ({irq_s:.2} s of interrupts meanwhile)"
    );
}

/// Time all CPUs spent in interrupts and softirqs (/proc/stat, in USER_HZ ticks of 10 ms).
fn irq_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    // user nice system idle iowait irq softirq ...
    cpu[5] + cpu[6]
}

#[test]
fn a_threads_wall_time_adds_up_to_the_window() {
    let Some(_g) = ebpf_test() else { return };
    // 20 ms sleeps until killed, traced for a second.
    let work = KillOnDrop(
        Command::new(WORKLOAD)
            .args(["paced", "30000", "20"])
            .spawn()
            .unwrap(),
    );
    let out = run(tracer().args([
        "--output",
        "json",
        "--threads",
        "--duration",
        "1",
        "--pid",
        &work.0.id().to_string(),
    ]));
    drop(work);
    let r = final_report(&out);
    let window = r["duration_s"].as_f64().unwrap() * 1e9;
    let t = &sched(&r)["threads"][0];
    let parts = ["on_cpu_ns", "runqueue_ns", "blocked_ns"].map(|k| t[k].as_u64().unwrap() as f64);
    let wall: f64 = parts.iter().sum();
    // 2%, and one 20 ms sleep: in the emulated guests of the kernel matrix one of the
    // thread's sleeps can go unaccounted (twice in about nine full matrix runs: 6.1, 2.3%
    // short; 6.16, 20.7 ms short of 1007 ms), as a switch the kernel did not report does
    // on this machine's kernel (NOTES.md, "Machine facts").
    assert!(
        (wall - window).abs() < 0.02 * window + 20e6,
        "on+runq+blocked {wall} vs window {window}: {t}"
    );
    assert!(parts[2] > 0.9 * window, "it mostly sleeps: {t}");
}

#[test]
fn follow_traces_children_from_their_first_syscall() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer().args([
        "--output", "json", "--follow", "--", WORKLOAD, "forks", "20", "100",
    ]));
    let r = final_report(&out);
    assert_calls(&r, "getppid", 2000);
    let mut followed: Vec<u64> = r["followed_pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    followed.sort_unstable();
    followed.dedup();
    assert_eq!(followed.len(), 20);
    let forks = events(&r, "fork");
    assert_eq!(forks.len(), 20);
    assert!(
        forks
            .iter()
            .all(|f| f["followed"] == true && f["thread"] == false)
    );
    // Every child's exit is seen, with code 0.
    let exits: Vec<_> = events(&r, "exit")
        .into_iter()
        .filter(|e| e["pid"] != r["pids"][0])
        .collect();
    assert_eq!(exits.len(), 20);
    assert!(
        exits
            .iter()
            .all(|e| e["exit_code"] == 0 && e["process"] == true)
    );
}

/// Attaches (`--pid`, with or without `--follow`) to a parent whose 3 children already
/// exist and wait; once attached they make 100 `getppid`s each. Returns the final report.
fn family(follow: bool) -> serde_json::Value {
    let mut work = ready_workload(WORKLOAD, &["family", "3", "100"]);
    let args: &[&str] = if follow {
        &["--output", "json", "--follow"]
    } else {
        &["--output", "json"]
    };
    let (tr, _stderr) = attach(work.id(), args);
    std::io::Write::write_all(work.stdin.as_mut().unwrap(), b"go\n").unwrap();
    assert!(work.wait().unwrap().success());
    final_report(&wait_output(tr, std::time::Duration::from_secs(30)))
}

/// `--follow` takes in the children a target already has when tracing starts.
#[test]
fn follow_takes_in_children_that_exist_at_attach() {
    let Some(_g) = ebpf_test() else { return };
    assert_calls(&family(true), "getppid", 300);
    assert_eq!(calls(&family(false), "getppid"), 0);
}

#[test]
fn without_follow_children_are_not_counted() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer().args(["--output", "json", "--", WORKLOAD, "forks", "20", "100"]));
    let r = final_report(&out);
    assert_eq!(calls(&r, "getppid"), 0);
    assert_eq!(r["life"]["children_forked"], 20);
    assert_eq!(r["followed_pids"], serde_json::json!([]));
}

#[test]
fn exit_codes_and_killing_signals_are_reported() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer().args(["--output", "json", "--follow", "--", WORKLOAD, "exits"]));
    let r = final_report(&out);
    let parent = r["pids"][0].as_u64().unwrap();
    let children: Vec<_> = events(&r, "exit")
        .into_iter()
        .filter(|e| e["pid"] != parent)
        .collect();
    assert_eq!(children.len(), 3, "{:?}", r["events"]);
    let three = children
        .iter()
        .find(|e| e["exit_code"] == 3)
        .expect("an exit with code 3");
    assert_eq!(three["signal"], Value::Null);
    let killed = children
        .iter()
        .find(|e| e["signal"] == "SIGKILL")
        .expect("an exit by SIGKILL");
    assert_eq!(killed["exit_code"], Value::Null);
    // The SIGKILL itself was seen, sent by the parent to that child.
    let sigkill = events(&r, "signal")
        .into_iter()
        .find(|s| s["signal"] == "SIGKILL")
        .expect("the SIGKILL");
    assert_eq!(sigkill["pid"], killed["pid"]);
    assert_eq!(sigkill["sender_pid"], parent);
    // A fault's SIGSEGV, and each child's SIGCHLD to the parent, come from the kernel, not
    // from whatever task was running.
    let faulted = children
        .iter()
        .find(|e| e["signal"] == "SIGSEGV")
        .expect("an exit by SIGSEGV");
    let sigsegv = events(&r, "signal")
        .into_iter()
        .find(|s| s["signal"] == "SIGSEGV")
        .expect("the SIGSEGV");
    assert_eq!(sigsegv["pid"], faulted["pid"]);
    assert_eq!(sigsegv["sender_pid"], Value::Null);
    let sigchld: Vec<_> = events(&r, "signal")
        .into_iter()
        .filter(|s| s["signal"] == "SIGCHLD")
        .collect();
    assert_eq!(sigchld.len(), 3, "{sigchld:?}");
    assert!(
        sigchld
            .iter()
            .all(|s| s["pid"] == parent && s["sender_pid"].is_null())
    );
    // The parent itself exited with 0.
    assert!(
        events(&r, "exit")
            .iter()
            .any(|e| e["pid"] == parent && e["exit_code"] == 0)
    );
}

/// With `--threads`, each thread has its own syscall table (as `perf trace -s`): three
/// threads started one after another, each making exactly 100 `getppid`s, have 100 each;
/// the main thread, which made none, has none; roles: the main thread is `main`.
#[test]
fn each_thread_has_its_own_syscall_table() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer().args([
        "--threads",
        "--output",
        "json",
        "--",
        WORKLOAD,
        "threads",
        "3",
        "100",
    ]));
    let r = final_report(&out);
    let pid = r["pids"][0].as_u64().unwrap();
    let threads = sched(&r)["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 4, "{threads:?}");
    let getppid = |t: &Value| {
        t["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "getppid")
            .map(|c| c["calls"].as_u64().unwrap())
    };
    for t in threads {
        if t["tid"].as_u64() == Some(pid) {
            assert_eq!(getppid(t), None, "{t}");
            assert_eq!(t["role"], "main", "{t}");
            assert!(t["syscalls"].as_array().unwrap().len() > 5, "{t}");
        } else {
            assert_eq!(getppid(t), Some(100), "{t}");
        }
    }
    // The threads' tables add up to the process's.
    let mut sum: std::collections::BTreeMap<String, u64> = Default::default();
    for t in threads {
        for c in t["syscalls"].as_array().unwrap() {
            *sum.entry(c["name"].as_str().unwrap().to_string())
                .or_default() += c["calls"].as_u64().unwrap();
        }
    }
    for row in r["syscalls"].as_array().unwrap() {
        let name = row["name"].as_str().unwrap();
        assert_eq!(sum.get(name).copied(), row["calls"].as_u64(), "{name}");
    }
}

/// A thread that computes without a syscall (`compute`) is seen, while it runs, to have
/// run on a CPU without entering the kernel for most of its on-CPU time so far.
#[test]
fn a_thread_that_never_enters_the_kernel_is_seen_running_silent() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer().args([
        "--threads",
        "--output",
        "json",
        "--interval",
        "0.2",
        "--",
        WORKLOAD,
        "compute",
        "120",
    ]));
    let lines = json_lines(&out);
    let r = lines.last().unwrap();
    let pid = r["pids"][0].as_u64().unwrap();
    let threads = sched(r)["threads"].as_array().unwrap();
    let worker = threads
        .iter()
        .find(|t| t["tid"].as_u64() != Some(pid))
        .unwrap_or_else(|| panic!("no worker thread in the final report: {threads:?}"));
    let tid = worker["tid"].as_u64().unwrap();
    let on_cpu = worker["on_cpu_ns"].as_u64().unwrap();
    assert!(on_cpu >= 300_000_000, "{worker}");
    // Its longest silence seen in an interval report: all of its on-CPU time but what it
    // ran before the first reading after its start and after the last before its end
    // (an interval each, of 0.2 s, when readings keep time; on a loaded emulated guest a
    // reading came a second late): half of it at least.
    let silent = lines
        .iter()
        .filter(|l| l["type"] == "interval")
        .flat_map(|l| {
            l["sched"]["threads"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|t| t["tid"].as_u64() == Some(tid))
        .filter_map(|t| t["cpu_without_syscalls_ns"].as_u64())
        .max()
        .unwrap_or_else(|| panic!("thread {tid} in no interval report: {lines:?}"));
    assert!(
        silent as f64 >= 0.5 * on_cpu as f64 && silent <= on_cpu,
        "silent {silent} of {on_cpu}: {worker}"
    );
    // The main thread, which only waits to join it, runs nothing silent.
    let main = threads
        .iter()
        .find(|t| t["tid"].as_u64() == Some(pid))
        .unwrap();
    assert!(
        main["cpu_without_syscalls_ns"].as_u64().unwrap() < 50_000_000,
        "{main}"
    );
}
