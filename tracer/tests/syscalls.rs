//! Integration tests that load tracer's real eBPF programs and check exact counts from
//! workloads whose syscalls are known. They need root (CI is root on the same kernel).
mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use common::*;
use serde_json::Value;

const GETPPID: u64 = 1000;
const WRITES: u64 = 500;
const MISSING_OPENS: u64 = 200;

#[test]
fn attach_by_pid_counts_exactly() {
    let Some(_g) = ebpf_test() else { return };
    let counts = [GETPPID, WRITES, MISSING_OPENS].map(|n| n.to_string());
    let mut work = ready_workload(WORKLOAD, &["syscalls", &counts[0], &counts[1], &counts[2]]);

    let (tr, _stderr) = attach(work.id(), &["--output", "json"]);
    // Attached: let the workload do its counted work and exit; tracer ends by itself.
    work.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert!(work.wait().unwrap().success());
    let out = wait_output(tr, Duration::from_secs(30));
    assert!(out.status.success());
    let r = final_report(&out);

    assert_eq!(r["pids"], serde_json::json!([work.id()]));
    assert_calls(&r, "getppid", GETPPID);
    assert_calls(&r, "write", WRITES);
    let openat = row(&r, "openat").expect("openat row");
    assert_eq!(openat["calls"], MISSING_OPENS);
    assert_eq!(openat["errors"], MISSING_OPENS);
    assert_eq!(
        openat["errnos"],
        serde_json::json!({ "ENOENT": MISSING_OPENS })
    );
    // The read of stdin began before tracer attached: it must not be counted.
    assert_eq!(calls(&r, "read"), 0);
    // Writes to /dev/null succeed, and their latencies are ordered and plausible.
    let w = row(&r, "write").unwrap();
    assert_eq!(w["errors"], 0);
    let (p50, p99, max) = (
        w["p50_ns"].as_u64().unwrap(),
        w["p99_ns"].as_u64().unwrap(),
        w["max_ns"].as_u64().unwrap(),
    );
    assert!(0 < p50 && p50 <= p99 && p99 <= max, "{w}");
    assert_eq!(r["lost_events"], 0);
    assert_eq!(r["totals"]["errors"], MISSING_OPENS);
}

#[test]
fn launched_command_is_counted_from_its_exec() {
    let Some(_g) = ebpf_test() else { return };
    // cargo test sets LD_LIBRARY_PATH; the loader would search it (and fail) for libc.
    let out = run(tracer()
        .env_remove("LD_LIBRARY_PATH")
        .args(["--output", "json", "--", WORKLOAD, "syscalls"])
        .args([GETPPID, WRITES, MISSING_OPENS].map(|n| n.to_string())));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = final_report(&out);
    assert_calls(&r, "execve", 1);
    assert_calls(&r, "getppid", GETPPID);
    assert_calls(&r, "write", WRITES);
    // The dynamic loader opens libraries too; the failures are exactly the workload's.
    assert_eq!(
        row(&r, "openat").unwrap()["errnos"]["ENOENT"],
        MISSING_OPENS
    );
    assert_eq!(r["command"]["exit_code"], 0);
}

/// Read and write counts equal what `strace -f -c` reports for the same command.
#[test]
fn dd_counts_equal_strace() {
    let Some(_g) = ebpf_test() else { return };
    let dd = ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=20000"];
    let out = run(tracer()
        .env_remove("LD_LIBRARY_PATH")
        .args(["--output", "json", "--"])
        .args(dd));
    let r = final_report(&out);

    let text = strace_summary(&dd);
    let strace_calls = |name: &str| strace_count(&text, name);
    assert_calls(&r, "read", strace_calls("read"));
    assert_calls(&r, "write", strace_calls("write"));
    assert!(calls(&r, "read") >= 20000);
}

/// With `--interval`, the NDJSON objects tile the run on both clocks, from the first
/// interval (a whole interval from the start) to the last, partial one written at the end,
/// and their counts add up to the final object's exactly.
#[test]
fn interval_reports_tile_the_run_and_add_up() {
    let Some(_g) = ebpf_test() else { return };
    let before = SystemTime::now();
    // 40 getppids 50 ms apart: about 2 s of activity, spread over several intervals.
    let out = run(tracer().args([
        "--output",
        "json",
        "--interval",
        "0.6",
        "--",
        WORKLOAD,
        "paced",
        "40",
        "50",
    ]));
    let after = SystemTime::now();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let (fin, intervals) = lines.split_last().unwrap();
    assert!(intervals.len() >= 3, "{} interval lines", intervals.len());
    assert!(intervals.iter().all(|l| l["type"] == "interval"));
    assert_eq!(fin["type"], "final");

    let mono = |l: &Value, which: &str| l[format!("{which}_mono_ns")].as_u64().unwrap();
    let wall = |l: &Value, which: &str| {
        let s = l[which].as_str().unwrap();
        assert!(
            s.ends_with('Z') && s.len() == 27,
            "RFC 3339, UTC, microseconds: {s}"
        );
        humantime::parse_rfc3339(s).unwrap()
    };
    for l in &lines {
        assert_eq!(l["schema_version"], 2, "{l}");
        let ns = mono(l, "end") - mono(l, "start");
        assert_eq!(l["duration_s"].as_f64().unwrap(), ns as f64 / 1e9);
        // The wall clock keeps the monotonic clock's intervals (each bound cut to the
        // microsecond).
        let wall_ns = wall(l, "end").duration_since(wall(l, "start")).unwrap();
        assert!(wall_ns.as_nanos().abs_diff(ns as u128) < 1000, "{l}");
    }
    let started = wall(fin, "start");
    assert!(before - Duration::from_secs(1) <= started && started <= after);

    // The first interval starts with the run, each one where the one before ended, and
    // the last one ends with the run: written at the end, not only counted in the final.
    let bound = |l: &Value, which: &str| (l[which].clone(), mono(l, which));
    assert_eq!(bound(&intervals[0], "start"), bound(fin, "start"));
    for pair in intervals.windows(2) {
        assert_eq!(bound(&pair[0], "end"), bound(&pair[1], "start"));
    }
    let last = intervals.last().unwrap();
    assert_eq!(bound(last, "end"), bound(fin, "end"));
    // Boundaries fall every 0.6 s from the start: interval k ends at least k × 0.6 s in, so
    // the first covers a whole interval (it used to end 0.45 s after tracer started).
    let t0 = mono(fin, "start");
    for (k, l) in intervals[..intervals.len() - 1].iter().enumerate() {
        let end = mono(l, "end") - t0;
        assert!(
            end >= (k as u64 + 1) * 600_000_000,
            "interval {k} ends at {end} ns"
        );
    }

    // Every count of the intervals adds up to the final one, exactly.
    let sum = |f: &dyn Fn(&Value) -> u64| intervals.iter().map(f).sum::<u64>();
    for name in ["getppid", "clock_nanosleep"] {
        assert_eq!(sum(&|l| calls(l, name)), calls(fin, name), "{name}");
    }
    assert_calls(fin, "getppid", 40);
    assert_calls(fin, "clock_nanosleep", 40);
    let total = |l: &Value, path: &[&str]| {
        path.iter()
            .fold(l, |v, k| &v[*k])
            .as_u64()
            .unwrap_or_else(|| panic!("{path:?} in {l}"))
    };
    for path in [
        &["totals", "calls"][..],
        &["sched", "voluntary_switches"],
        &["sched", "on_cpu_ns"],
        &["life", "execs"],
        &["memory", "page_faults", "minor"],
        &["memory", "mmap", "anon_mapped_bytes"],
        &["fds", "opened"],
    ] {
        assert_eq!(sum(&|l| total(l, path)), total(fin, path), "{path:?}");
    }
    assert_eq!(total(fin, &["life", "execs"]), 1);
    // Readings at the bounds: descriptors open at each interval's start are those at the
    // end of the one before.
    assert_eq!(intervals[0]["fds"]["start"], fin["fds"]["start"]);
    for pair in intervals.windows(2) {
        assert_eq!(pair[0]["fds"]["end"], pair[1]["fds"]["start"]);
        assert_eq!(
            pair[0]["memory"]["rss"]["end_bytes"],
            pair[1]["memory"]["rss"]["start_bytes"]
        );
    }
    assert_eq!(last["fds"]["end"], fin["fds"]["end"]);
}

#[test]
fn exit_status_is_the_commands() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer().args(["--output", "json", "--", "sh", "-c", "exit 3"]));
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(final_report(&out)["command"]["exit_code"], 3);

    let out = run(tracer().args(["--output", "json", "--", "sh", "-c", "kill -KILL $$"]));
    assert_eq!(out.status.code(), Some(128 + 9));
    assert_eq!(final_report(&out)["command"]["signal"], "SIGKILL");
}

#[test]
fn duration_ends_the_run_and_leaves_the_process_alone() {
    let Some(_g) = ebpf_test() else { return };
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let start = Instant::now();
    let (tr, _stderr) = attach(sleeper.id(), &["--duration", "0.5"]);
    let ids = prog_ids_of(tr.id());
    let out = wait_output(tr, Duration::from_secs(30));
    let took = start.elapsed();
    assert!(out.status.success());
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("summary of"), "{text}");
    // The traced process is unharmed.
    assert!(sleeper.try_wait().unwrap().is_none());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_unloaded(&ids);
}

#[test]
fn sigterm_prints_the_summary_and_detaches() {
    let Some(_g) = ebpf_test() else { return };
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let (tr, _stderr) = attach(sleeper.id(), &["--output", "json"]);
    let ids = prog_ids_of(tr.id());
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(tr.id() as i32, libc::SIGTERM) };
    let out = wait_output(tr, Duration::from_secs(10));
    assert!(out.status.success());
    assert_eq!(
        final_report(&out)["pids"],
        serde_json::json!([sleeper.id()])
    );
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the traced process must survive"
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_unloaded(&ids);
}

#[test]
fn sigkill_of_tracer_leaves_nothing_attached() {
    let Some(_g) = ebpf_test() else { return };
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let (mut tr, _stderr) = attach(sleeper.id(), &[]);
    let ids = prog_ids_of(tr.id());
    assert!(ids.len() >= 2, "sys_enter and sys_exit at least: {ids:?}");
    tr.kill().unwrap();
    tr.wait().unwrap();
    assert_unloaded(&ids);
    assert!(sleeper.try_wait().unwrap().is_none());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

/// The numbers of `name`'s row: (calls, timed, p50, p99, max), in ns.
fn latency(r: &serde_json::Value, name: &str) -> (u64, u64, u64, u64, u64) {
    let row = row(r, name).unwrap_or_else(|| panic!("no {name} row in {r}"));
    let n = |k: &str| row[k].as_u64().unwrap();
    (
        n("calls"),
        n("timed"),
        n("p50_ns"),
        n("p99_ns"),
        n("max_ns"),
    )
}

/// 200000 reads from /dev/zero in one thread, every 10th of 256 KiB (microseconds: the
/// kernel zeroes the buffer), the others of one byte (a fraction of a microsecond).
const MIXED: [&str; 4] = ["mixed", "200000", "10", "256"];

#[test]
fn busy_threads_are_sampled_and_the_estimate_keeps_the_shape() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer()
        .args(["--output", "json", "--", WORKLOAD])
        .args(MIXED));
    assert!(out.status.success());
    let r = final_report(&out);
    assert_eq!(
        r["latency_timing"],
        serde_json::json!({ "exact": false, "budget_per_tick": 32, "one_in": 16 })
    );
    let (calls, timed, p50, p99, max) = latency(&r, "read");
    // The workload's reads, plus the loader's few.
    assert!((200_000..200_050).contains(&calls), "{calls}");
    // Far fewer than all timed (about 1 in 16, plus 32 per 4 ms tick), far more than none.
    assert!(
        timed > calls / 40 && timed < calls / 4,
        "timed {timed} of {calls}"
    );
    // 90% of the reads are fast and 10% slow: the median is a fast one, the 99th
    // percentile a slow one, as when every call is timed. (The slow reads take about 20
    // times as long as the fast ones here, 40 times in an emulated guest, where both are
    // slower: the bound is on the ratio.)
    assert!(p99 > 8 * p50, "p50 {p50} p99 {p99}");
    assert!(p99 > 3_000 && p99 <= max, "p99 {p99} max {max}");
    assert_eq!(r["lost_events"], 0);
}

#[test]
fn exact_latency_times_every_call() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer()
        .args(["--output", "json", "--exact-latency", "--", WORKLOAD])
        .args(MIXED));
    assert!(out.status.success());
    let r = final_report(&out);
    assert_eq!(r["latency_timing"]["exact"], true);
    for row in r["syscalls"].as_array().unwrap() {
        assert_eq!(row["timed"], row["calls"], "{row}");
    }
    let (calls, _, p50, p99, _) = latency(&r, "read");
    assert!(calls >= 200_000);
    // As in the sampled test above: a fast median, a slow 99th percentile.
    assert!(p99 > 8 * p50 && p99 > 3_000, "p50 {p50} p99 {p99}");
    assert_eq!(r["totals"]["timed"], r["totals"]["calls"]);
}

/// The syscall hooks remember untraced threads by the address of their kernel stack, and a
/// new task may be given the stack of one that ended. While untraced processes start and
/// end threads that make syscalls (so that their stacks are remembered), a traced process
/// starts threads, and forks children (`--follow`), one after another: every one of their
/// calls must still be counted.
#[test]
fn new_tasks_on_reused_stacks_are_counted() {
    let Some(_g) = ebpf_test() else { return };
    // One per CPU; each thread makes a few syscalls (getppid, and its own exit).
    let _churners: Vec<KillOnDrop> = (0..2)
        .map(|_| {
            KillOnDrop(
                Command::new(WORKLOAD)
                    .args(["threads", "1000000000", "3"])
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let (count, per) = (2000u64, 5u64);
    let expected = count * per;
    let check = |mode: &str| {
        let out = run(tracer()
            .env_remove("LD_LIBRARY_PATH")
            .args(["--output", "json", "--follow", "--", WORKLOAD, mode])
            .args([count, per].map(|n| n.to_string())));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = final_report(&out);
        assert_eq!(r["lost_events"], 0);
        let counted = calls(&r, "getppid");
        // Where the kernel runs syscall programs preemptibly (Linux 7.3 here), it skips a
        // program's run on a CPU where a run of it is preempted: it says how often (any
        // process's runs, so an upper bound of the calls missed). A cache entry that
        // outlived its thread would lose every call of the new thread instead: 35-54% of
        // them here when the clearing was disabled.
        let skipped = r["drops"]["skipped_runs"].as_u64().unwrap();
        assert!(
            counted <= expected && expected - counted <= skipped,
            "getppid of new {mode}: {counted} of {expected}, {skipped} runs skipped"
        );
    };
    check("threads");
    check("forks");
}

/// A busy thread (200 getppid per round) that also sleeps 2 ms per round: its getppids
/// are sampled, but every sleep is timed, with or without the sched section (the sched
/// program, or the syscall section's own sched_switch program, sees it block).
#[test]
fn blocking_calls_are_always_timed() {
    let Some(_g) = ebpf_test() else { return };
    for sections in ["syscalls,sched,life,memory", "syscalls"] {
        let out = run(tracer()
            .args(["--output", "json", "--sections", sections, "--", WORKLOAD])
            .args(["bursts", "100", "200", "5"]));
        assert!(out.status.success());
        let r = final_report(&out);
        let (calls, timed, p50, p99, max) = latency(&r, "clock_nanosleep");
        // Every sleep that blocks is timed; without the blocking hook about 1 in 16 would
        // be. A sleep may not block at all where CPUs are emulated: a virtual CPU stalled
        // past the timer's expiry sees it fire before the sleeper reaches the scheduler
        // (1 in about 1200 sleeps of 2 ms in the kernel matrix).
        assert_eq!(calls, 100, "--sections {sections}");
        assert!(
            timed >= 98,
            "--sections {sections}: {timed} of {calls} timed"
        );
        // Timed from the moment it blocked at the latest: at most microseconds short.
        assert!(p50 >= 4_500_000, "--sections {sections}: p50 {p50}");
        assert!(p50 <= p99 && p99 <= max);
        let (calls, timed, ..) = latency(&r, "getppid");
        assert_eq!(calls, 20_000);
        assert!(timed < calls / 2, "--sections {sections}: {timed} timed");
    }
}

/// A busy thread's rare syscall still gets a latency: its first calls are timed whatever the
/// sampling (about 1 in 3 runs would have none of 20 timed by sampling alone).
#[test]
fn a_rare_call_of_a_busy_thread_is_timed() {
    let Some(_g) = ebpf_test() else { return };
    let out = run(tracer()
        .args(["--output", "json", "--sections", "syscalls", "--", WORKLOAD])
        .args(["rare", "100000", "5000"]));
    assert!(out.status.success());
    let r = final_report(&out);
    let (calls, timed, p50, _, max) = latency(&r, "getuid");
    assert_eq!(calls, 20);
    assert!(
        timed >= u64::from(tracer_common::FEW_TIMED),
        "{timed} of {calls} timed"
    );
    assert!(0 < p50 && p50 <= max);
    let (calls, timed, ..) = latency(&r, "getppid");
    assert_eq!(calls, 100_000);
    assert!(timed < calls / 4, "getppid is still sampled: {timed} timed");
}

/// `strace -f -c`'s count of `name` in a summary it wrote.
fn strace_count(summary: &str, name: &str) -> u64 {
    let line = summary
        .lines()
        .find(|l| l.split_whitespace().last() == Some(name))
        .unwrap_or_else(|| panic!("{name} not in strace output:\n{summary}"));
    // % time, seconds, usecs/call, calls, [errors], syscall
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// Runs `args` under `strace -f -c` and returns its summary.
fn strace_summary(args: &[&str]) -> String {
    let summary = std::env::temp_dir().join(format!("tracer-strace-{}.txt", std::process::id()));
    let st = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&summary)
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .stderr(Stdio::null())
        .status()
        .expect("strace is needed for this test");
    assert!(st.success());
    let text = std::fs::read_to_string(&summary).unwrap();
    let _ = std::fs::remove_file(&summary);
    text
}

/// A 32-bit program: 1000 `getppid`s through the vDSO's `__kernel_vsyscall` (the
/// `sysenter`/`syscall` entry 32-bit programs use, not `int 0x80`), then `exit_group(0)`.
/// Assembled with `as --32` from:
/// ```text
/// _start: mov %esp,%esi; mov (%esi),%eax; lea 8(%esi,%eax,4),%esi   # envp[0]
/// 1:      lodsl; test %eax,%eax; jnz 1b                           # skip envp
/// 2:      lodsl; mov %eax,%edx; lodsl                             # auxv type, value
///         cmp $32,%edx; je 3f; test %edx,%edx; jnz 2b             # AT_SYSINFO?
///         mov $252,%eax; mov $2,%ebx; int $0x80                   # none: exit_group(2)
/// 3:      mov %eax,%edi; mov $1000,%ebp
/// 4:      mov $64,%eax; call *%edi; dec %ebp; jnz 4b              # getppid x 1000
///         mov $252,%eax; xor %ebx,%ebx; call *%edi                # exit_group(0)
/// ```
const I386_CODE: [u8; 64] = [
    0x89, 0xe6, 0x8b, 0x06, 0x8d, 0x74, 0x86, 0x08, 0xad, 0x85, 0xc0, 0x75, 0xfb, 0xad, 0x89, 0xc2,
    0xad, 0x83, 0xfa, 0x20, 0x74, 0x10, 0x85, 0xd2, 0x75, 0xf3, 0xb8, 0xfc, 0x00, 0x00, 0x00, 0xbb,
    0x02, 0x00, 0x00, 0x00, 0xcd, 0x80, 0x89, 0xc7, 0xbd, 0xe8, 0x03, 0x00, 0x00, 0xb8, 0x40, 0x00,
    0x00, 0x00, 0xff, 0xd7, 0x4d, 0x75, 0xf6, 0xb8, 0xfc, 0x00, 0x00, 0x00, 0x31, 0xdb, 0xff, 0xd7,
];

/// A static i386 ELF executable of `code`: the ELF header, one loadable segment.
fn i386_elf(code: &[u8]) -> Vec<u8> {
    const BASE: u32 = 0x0804_8000;
    const HEADERS: u32 = 52 + 32;
    let size = HEADERS + code.len() as u32;
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0"); // 32-bit, LE, v1
    for h in [2u16, 3] {
        f.extend_from_slice(&h.to_le_bytes()); // ET_EXEC, EM_386
    }
    for w in [1, BASE + HEADERS, 52, 0, 0] {
        f.extend_from_slice(&w.to_le_bytes()); // version, entry, phoff, shoff, flags
    }
    for h in [52u16, 32, 1, 40, 0, 0] {
        f.extend_from_slice(&h.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, ...
    }
    // PT_LOAD of the whole file at BASE, read and execute.
    for w in [1, 0, BASE, BASE, size, size, 5, 0x1000] {
        f.extend_from_slice(&w.to_le_bytes());
    }
    f.extend_from_slice(code);
    f
}

/// A 32-bit program's calls are named from the i386 table, in rows of their own, and its
/// exit_group (i386's 252, x86_64's epoll_ctl) is not counted, as strace -c does not.
#[test]
fn a_32_bit_program_is_named_from_the_i386_table() {
    let Some(_g) = ebpf_test() else { return };
    let prog = std::env::temp_dir().join(format!("tracer-test-getppid32-{}", std::process::id()));
    std::fs::write(&prog, i386_elf(&I386_CODE)).unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = run(tracer().args(["--output", "json", "--"]).arg(&prog));
    std::fs::remove_file(&prog).unwrap();
    let r = final_report(&out);
    assert_eq!(r["command"]["exit_code"], 0, "the program found AT_SYSINFO");
    let rows = r["syscalls"].as_array().unwrap();
    let skipped = r["drops"]["skipped_runs"].as_u64().unwrap_or(0);
    let getppid = abi_row(&r, "getppid", "i386").map_or(0, |x| x["calls"].as_u64().unwrap());
    assert!(
        getppid <= 1000 && 1000 - getppid <= skipped,
        "{getppid} i386 getppid counted, {skipped} runs skipped"
    );
    // Only the exec (a 64-bit call, made by tracer's child before it became the program)
    // is x86_64; nothing else was called.
    let names: Vec<String> = rows
        .iter()
        .map(|x| {
            format!(
                "{}/{}",
                x["name"].as_str().unwrap(),
                x["abi"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"execve/x86_64".to_string()), "{names:?}");
}
