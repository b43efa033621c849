//! Integration tests of the memory section: workloads with exactly known heap growth,
//! mappings, descriptors, and a real OOM kill in a memory cgroup of the test's own. They
//! load the real eBPF programs and need root (CI is root on the same kernel).
mod common;

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::process::CommandExt,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use common::*;
use serde_json::Value;

const MIB: f64 = (1u64 << 20) as f64;

/// Asserts `got` is within `tol` (a fraction) of `want`.
fn assert_near(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want,
        "{what}: got {got} ({:.3} MiB), want {want} ({:.3} MiB) within {}%",
        got / MIB,
        want / MIB,
        tol * 100.0
    );
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Starts a workload with `--wait` (optionally with RLIMIT_NOFILE set before its exec) and
/// returns it once it has said `ready`.
fn waiting_workload(args: &[&str], nofile: Option<u64>) -> Child {
    let mut cmd = Command::new(WORKLOAD);
    cmd.arg("--wait")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(n) = nofile {
        // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    child
}

/// Attaches tracer (memory section, `format`) to a waiting workload, lets the workload
/// run to its end, and returns tracer's output and the workload's (stdout, status).
fn trace_waiting(mut work: Child, format: &str) -> (Output, String, std::process::ExitStatus) {
    let mut tr = tracer()
        .args(["--output", format, "--sections", "syscalls,memory"])
        .args(["--pid", &work.id().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stderr = wait_for_stderr(&mut tr, "tracing");
    work.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let work_out = wait_output(work, Duration::from_secs(60));
    let out = wait_output(tr, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "tracer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out,
        String::from_utf8_lossy(&work_out.stdout).into_owned(),
        work_out.status,
    )
}

#[test]
fn heap_growth_by_brk_is_reported() {
    let Some(_g) = ebpf_test() else { return };
    let work = waiting_workload(&["brk", "64"], None);
    let (out, _, status) = trace_waiting(work, "json");
    assert!(status.success());
    let r = final_report(&out);
    let m = &r["memory"];
    assert_near("brk growth", num(&m["brk_growth_bytes"]), 64.0 * MIB, 0.01);
    assert_calls(&r, "brk", 64);
    // The per-process object says the same.
    assert_eq!(
        r["processes"][0]["memory"]["brk_growth_bytes"],
        m["brk_growth_bytes"]
    );
    assert_eq!(r["lost_events"], 0);
}

#[test]
fn anonymous_mapping_and_rss_growth_are_reported() {
    let Some(_g) = ebpf_test() else { return };
    let work = waiting_workload(&["mmap", "32"], None);
    let (out, _, status) = trace_waiting(work, "json");
    assert!(status.success());
    let r = final_report(&out);
    let m = &r["memory"];
    let mmap = &m["mmap"];
    assert_near(
        "anon mapped",
        num(&mmap["anon_mapped_bytes"]),
        32.0 * MIB,
        0.01,
    );
    assert_near("unmapped", num(&mmap["unmapped_bytes"]), 32.0 * MIB, 0.01);
    assert_eq!(mmap["file_mapped_bytes"], 0);
    // RSS grew by the 32 MiB written (the peak, from rss_stat), then fell back.
    let rss = &m["rss"];
    let growth = num(&rss["peak_bytes"]) - num(&rss["start_bytes"]);
    assert_near("rss growth", growth, 32.0 * MIB, 0.05);
    assert!(
        num(&rss["end_bytes"]) < num(&rss["start_bytes"]) + 2.0 * MIB,
        "RSS after munmap: {rss}"
    );
    // One fault per page written (no huge pages), and a few for the rest of the run (the
    // count at the exit comes from the kernel: the test reaps the workload at once).
    let minor = m["page_faults"]["minor"].as_u64().unwrap();
    eprintln!("minor faults: {minor}, rss: {rss}");
    assert!((32 * 256..32 * 256 + 256).contains(&minor), "{minor}");
}

#[test]
fn descriptors_opened_and_never_closed_are_counted() {
    let Some(_g) = ebpf_test() else { return };
    let work = waiting_workload(&["fds", "500"], Some(4096));
    let (out, said, status) = trace_waiting(work, "json");
    assert!(status.success());
    assert!(said.starts_with("opened 500 emfile 0 "), "{said}");
    let f = &final_report(&out)["fds"];
    let (start, end) = (f["start"].as_u64().unwrap(), f["end"].as_u64().unwrap());
    assert_eq!(end - start, 500, "{f}");
    assert_eq!(f["opened"], 500);
    assert_eq!(f["closed"], 0);
    assert_eq!(f["limit"], 4096);
    assert_eq!(f["emfile_errors"], 0);
    assert!(f["warning"].is_null(), "{f}");
    assert!(f["first_emfile_s"].is_null(), "{f}");
}

#[test]
fn dup2_counts_only_when_it_adds_a_descriptor() {
    let Some(_g) = ebpf_test() else { return };
    let work = waiting_workload(&["dups"], None);
    let (out, said, status) = trace_waiting(work, "json");
    assert!(status.success());
    // The workload's own /proc count grew by 4 (the read_dir for counting is closed).
    assert_eq!(said.trim(), "delta 4");
    let r = final_report(&out);
    let f = &r["fds"];
    // dup2 onto a free number, dup3, F_DUPFD, and a pipe's two ends; one close (plus the
    // read_dir of /proc/self/fd: one open and one close). Exactly, unless the kernel
    // skipped runs of tracer's programs (Linux 7.3 runs syscall tracepoint programs
    // preemptibly, and says how many runs it skipped): then at most that many fewer.
    let skipped = r["drops"]["skipped_runs"].as_u64().unwrap();
    let opened = f["opened"].as_u64().unwrap();
    assert!(
        opened == 6 || (skipped > 0 && opened < 6 && opened + skipped >= 6),
        "{f}, skipped runs {skipped}"
    );
    if opened < 6 {
        eprintln!(
            "{} open(s) unseen: the kernel skipped {skipped} runs",
            6 - opened
        );
        return;
    }
    assert_eq!(f["closed"], 1 + 1, "{f}");
    assert_eq!(f["end"].as_u64().unwrap() - f["start"].as_u64().unwrap(), 4);
}

/// Descriptors received over a unix socket (SCM_RIGHTS, as node's cluster workers get them)
/// are counted, with recvmsg and recvmmsg.
#[test]
fn descriptors_received_over_a_socket_are_counted() {
    let Some(_g) = ebpf_test() else { return };
    let work = waiting_workload(&["passfds", "10"], None);
    let (out, said, status) = trace_waiting(work, "json");
    assert!(status.success());
    // The socket pair, 10 x 2 received with recvmsg, 2 x 1 with recvmmsg.
    assert_eq!(said.trim(), "delta 24");
    let r = final_report(&out);
    let f = &r["fds"];
    assert_eq!(
        f["end"].as_u64().unwrap() - f["start"].as_u64().unwrap(),
        24,
        "{f}"
    );
    // (The workload's own listing of /proc/self/fd opens and closes one more.)
    assert_eq!(
        f["opened"].as_u64().unwrap() - f["closed"].as_u64().unwrap(),
        24,
        "{f}"
    );
    assert_calls(&r, "recvmsg", 10);
    assert_calls(&r, "recvmmsg", 1);
    assert_eq!(r["drops"]["fds_unscanned"], 0);
}

/// 32-bit syscalls (`int 0x80` from 64-bit code, the entry 32-bit programs use) are named
/// from the i386 table in rows of their own, and their mappings and descriptors counted
/// with i386's numbers and argument registers: i386's 64 is getppid (x86_64's semget), its
/// 6 close (x86_64's lstat).
#[test]
fn compat_syscalls_have_their_own_rows_and_accounting() {
    let Some(_g) = ebpf_test() else { return };
    let work = waiting_workload(&["int80", "1000"], None);
    let (out, said, status) = trace_waiting(work, "json");
    assert!(status.success());
    assert_eq!(said.trim(), "delta 7");
    let r = final_report(&out);
    let skipped = r["drops"]["skipped_runs"].as_u64().unwrap_or(0);
    for (name, want) in [
        ("getppid", 1000),
        ("open", 3),
        ("close", 1),
        ("pipe", 1),
        ("socketcall", 1),
        ("dup2", 1),
        ("fcntl64", 1),
        ("mmap2", 1),
        ("munmap", 1),
        ("mmap", 1),
    ] {
        let got = abi_row(&r, name, "i386").map_or(0, |row| row["calls"].as_u64().unwrap());
        assert!(
            got <= want && want - got <= skipped,
            "{name} (i386): {got} calls counted, {want} made ({skipped} runs skipped)"
        );
    }
    // Nothing of it under x86_64's names for the same numbers.
    for name in ["semget", "lstat", "getppid"] {
        assert!(row(&r, name).is_none(), "{name} (x86_64) reported");
    }
    let f = &r["fds"];
    assert_eq!(
        f["end"].as_u64().unwrap() - f["start"].as_u64().unwrap(),
        7,
        "{f}"
    );
    // 3 opens, a pipe's 2, a socket, dup2 onto a free number, F_DUPFD; one close. (The
    // workload's listing of /proc/self/fd opens and closes one more.)
    assert_eq!(f["opened"], 8 + 1, "{f}");
    assert_eq!(f["closed"], 1 + 1, "{f}");
    let mmap = &r["memory"]["mmap"];
    assert_eq!(num(&mmap["anon_mapped_bytes"]), 3.0 * MIB, "{mmap}");
    // 1 MiB by the 32-bit munmap; Rust's exit unmaps its signal stack (12 KiB) natively.
    let native = calls(&r, "munmap") as f64;
    let unmapped = num(&mmap["unmapped_bytes"]);
    assert!(
        unmapped >= MIB && unmapped <= MIB + native * 64.0 * 1024.0,
        "{mmap}, {native} x86_64 munmaps"
    );
    assert_eq!(r["drops"]["compat_rows_full"], 0);
}

#[test]
fn close_range_and_exec_close_what_they_close() {
    let Some(_g) = ebpf_test() else { return };
    let work = waiting_workload(&["fdexec"], None);
    let (out, said, status) = trace_waiting(work, "json");
    assert!(status.success());
    assert!(
        said.starts_with("opened 2 emfile 0 "),
        "the exec'd program ran: {said}"
    );
    let r = final_report(&out);
    let f = &r["fds"];
    // Before the exec 10 opened, moved by dup2 (10 more) and closed (10), 2 by fcntl, 3
    // more; 2 after (the loader's opens and closes cancel out). Closed by close_range:
    // 5 + 2; by the exec: 5 + 3 close-on-exec.
    assert_eq!(
        f["end"].as_u64().unwrap() - f["start"].as_u64().unwrap(),
        2,
        "{f}"
    );
    assert_eq!(
        f["opened"].as_u64().unwrap() - f["closed"].as_u64().unwrap(),
        2,
        "{f}"
    );
    assert_calls(&r, "close_range", 3);
    assert_calls(&r, "execve", 1);
}

#[test]
fn emfile_errors_are_counted_and_warned_about() {
    let Some(_g) = ebpf_test() else { return };
    let work = waiting_workload(&["fds", "500"], Some(256));
    let (out, said, status) = trace_waiting(work, "json");
    assert!(status.success());
    // What the workload itself saw: "opened A emfile B open C". C can exceed the limit by
    // descriptors inherited with numbers above it (the limit caps numbers, not counts).
    let words: Vec<u64> = said
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (opened, emfile, open) = (words[0], words[1], words[2]);
    assert!(
        emfile > 0 && opened + emfile == 500 && open >= 256,
        "{said}"
    );
    let r = final_report(&out);
    let f = &r["fds"];
    assert_eq!(f["limit"], 256);
    assert_eq!(f["opened"], opened);
    assert_eq!(f["emfile_errors"], emfile);
    assert_eq!(f["end"], open, "the limit was reached: {f}");
    let w = f["warning"].as_str().expect("a warning");
    assert!(
        w.contains(&format!("reached {open} of the limit 256")),
        "{w}"
    );
    assert!(
        w.contains(&format!("{emfile} calls failed with EMFILE")),
        "{w}"
    );
    assert_eq!(row(&r, "openat").unwrap()["errnos"]["EMFILE"], emfile);
    // When: by the end of the run (the only report), not before tracing started.
    let first = f["first_emfile_s"]
        .as_f64()
        .expect("the first EMFILE's time");
    assert!(
        first > 0.0 && first <= r["duration_s"].as_f64().unwrap() + 0.5,
        "{f}"
    );

    // The text report shows the warning.
    let work = waiting_workload(&["fds", "500"], Some(256));
    let (out, said, _) = trace_waiting(work, "text");
    let open = said.split_whitespace().last().unwrap_or_default();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = &text[text.find("summary of").expect("a summary")..];
    assert!(summary.contains(&format!("EMFILE {emfile}")), "{summary}");
    assert!(
        summary.contains(&format!(
            "WARNING: open descriptors reached {open} of the limit 256"
        )),
        "{summary}"
    );
}

#[test]
fn oom_kill_of_the_traced_process_is_reported_and_tracer_exits() {
    let Some(_g) = ebpf_test() else { return };
    let Some(cg) = Cgroup::new(Some(64 << 20)) else {
        return;
    };
    let work = waiting_workload(&["oom"], None);
    let pid = work.id();
    cg.add(pid);
    let (out, _, status) = trace_waiting(work, "json");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the workload was OOM-killed"
    );
    let r = final_report(&out);
    let kills = r["oom_kills"].as_array().unwrap();
    let k = kills
        .iter()
        .find(|k| k["pid"] == pid)
        .unwrap_or_else(|| panic!("no OOM kill of {pid} in {kills:?}"));
    assert_eq!(k["comm"], "tracer-workload");
    assert_eq!(k["traced"], true);
    let name = cg.dir.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(k["cgroup"], format!("/{name}"));
    // It was killed near its cgroup's limit: most of 64 MiB was anonymous memory.
    let anon = num(&k["anon_rss_bytes"]);
    assert!(anon > 32.0 * MIB && anon <= 64.0 * MIB, "{k}");
    let limits = &r["memory"]["limits"]["cgroup"];
    assert_eq!(limits["path"], format!("/{name}"));
    assert_eq!(limits["limit_bytes"], 64u64 << 20);
    // The summary is complete: the memory it grew to is there too.
    assert!(
        num(&r["memory"]["rss"]["peak_bytes"]) > 32.0 * MIB,
        "{}",
        r["memory"]
    );
    assert_eq!(r["lost_events"], 0);
}

#[test]
fn growth_toward_a_cgroup_limit_gives_an_eta() {
    let Some(_g) = ebpf_test() else { return };
    let Some(cg) = Cgroup::new(Some(512 << 20)) else {
        return;
    };
    // 4 MiB every 100 ms for 2 s: about 40 MiB/s, far below the 512 MiB limit. The
    // workload then holds its memory until told to exit; tracer is stopped before that, so
    // the report is of a live, growing process.
    let mut work = waiting_workload(&["grow", "4", "100", "20"], None);
    cg.add(work.id());
    let mut tr = tracer()
        .args(["--output", "json", "--sections", "memory"])
        .args(["--pid", &work.id().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stderr = wait_for_stderr(&mut tr, "tracing");
    work.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let mut grown = String::new();
    BufReader::new(work.stdout.as_mut().unwrap())
        .read_line(&mut grown)
        .unwrap();
    assert_eq!(grown.trim(), "grown");
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(tr.id() as i32, libc::SIGTERM) };
    let out = wait_output(tr, Duration::from_secs(10));
    assert!(out.status.success());
    work.stdin.as_mut().unwrap().write_all(b"exit\n").unwrap();
    assert!(work.wait().unwrap().success());
    let m = &final_report(&out)["memory"];
    let rss = &m["rss"];
    assert!(rss["growth_samples"].as_u64().unwrap() >= 3, "{rss}");
    let rate = num(&rss["growth_bytes_per_s"]);
    assert!(rate > 0.0, "{rss}");
    let cgroup = &m["limits"]["cgroup"];
    let name = cg.dir.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(cgroup["path"], format!("/{name}"));
    assert_eq!(cgroup["limit_bytes"], 512u64 << 20);
    let eta = &m["limits"]["eta"];
    assert_eq!(eta["limit"], "cgroup", "{m}");
    assert_eq!(eta["limit_bytes"], 512u64 << 20);
    let used = num(&eta["used_bytes"]);
    assert!(used > 0.0 && used < 512.0 * MIB, "{eta}");
    // The ETA is the headroom at the fitted rate.
    let want = (512.0 * MIB - used) / num(&eta["rate_bytes_per_s"]);
    assert!((num(&eta["eta_s"]) - want).abs() < 1e-6 * want, "{eta}");
}

#[test]
fn oom_kill_of_an_untraced_process_is_reported_too() {
    let Some(_g) = ebpf_test() else { return };
    let Some(cg) = Cgroup::new(Some(64 << 20)) else {
        return;
    };
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let mut tr = tracer()
        .args(["--output", "json", "--sections", "memory"])
        .args(["--pid", &sleeper.id().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stderr = wait_for_stderr(&mut tr, "tracing");
    let mut work = waiting_workload(&["oom"], None);
    let pid = work.id();
    cg.add(pid);
    work.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let status = work.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the workload was OOM-killed"
    );
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(tr.id() as i32, libc::SIGTERM) };
    let out = wait_output(tr, Duration::from_secs(10));
    assert!(out.status.success());
    let r = final_report(&out);
    let kills = r["oom_kills"].as_array().unwrap();
    let k = kills
        .iter()
        .find(|k| k["pid"] == pid)
        .unwrap_or_else(|| panic!("no OOM kill of {pid} in {kills:?}"));
    assert_eq!(k["comm"], "tracer-workload");
    assert_eq!(k["traced"], false);
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the traced process is unharmed"
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

/// Whether this kernel's `mark_victim` tracepoint passes a pid (Linux 5.x) rather than a
/// task: from the prototype of its `btf_trace_mark_victim` in the kernel's BTF.
fn mark_victim_passes_a_pid() -> bool {
    use btf_rs::{Btf, Type};
    let bytes = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let btf = Btf::from_bytes(&bytes).unwrap();
    let Type::Typedef(t) = btf.resolve_types_by_name("btf_trace_mark_victim").unwrap()[0].clone()
    else {
        panic!("btf_trace_mark_victim is not a typedef");
    };
    let Ok(Type::Ptr(p)) = btf.resolve_chained_type(&t) else {
        panic!("btf_trace_mark_victim is not a pointer");
    };
    let Ok(Type::FuncProto(f)) = btf.resolve_chained_type(&p) else {
        panic!("btf_trace_mark_victim is not a function pointer");
    };
    matches!(btf.resolve_chained_type(&f.parameters[1]), Ok(Type::Int(_)))
}

/// Names of the eBPF programs a running tracer holds.
fn prog_names_of(pid: u32) -> Vec<String> {
    let ids = prog_ids_of(pid);
    let mut names: Vec<String> = aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .filter(|p| ids.contains(&p.id()))
        .map(|p| p.name_as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn sections_select_the_hooks() {
    let Some(_g) = ebpf_test() else { return };
    // Long enough for eight attaches in an emulated guest (5.10's outlived 30 s once).
    let sleeper = KillOnDrop(Command::new("sleep").arg("600").spawn().unwrap());
    let pid_victim = mark_victim_passes_a_pid();
    for (sections, want) in [
        // sys_switch: sched_switch for the syscall section alone, to time calls that block;
        // task_new: wherever sys_enter is, to keep its cache of untraced threads sound.
        (
            "syscalls",
            &[
                "sys_enter",
                "sys_exit",
                "sys_switch",
                "task_new",
                "task_new2",
            ][..],
        ),
        // Every call timed from entry: no need to see blocking.
        (
            "syscalls --exact-latency",
            &["sys_enter", "sys_exit", "task_new", "task_new2"][..],
        ),
        // task_new: in every section, to forget what ended tasks left under a new task's
        // stack and ids; task_new2 (and each rare event's second program) for the runs of
        // the first that the kernel skips.
        (
            "sched",
            &[
                "sched_switch",
                "sched_wake_new",
                "sched_wakeup",
                "task_new",
                "task_new2",
                "task_rename",
            ][..],
        ),
        // The sched section's sched_switch does sys_switch's work.
        (
            "syscalls,sched",
            &[
                "sched_switch",
                "sched_wake_new",
                "sched_wakeup",
                "sys_enter",
                "sys_exit",
                "task_new",
                "task_new2",
                "task_rename",
            ][..],
        ),
        (
            "life",
            &[
                "proc_exec",
                "proc_exec2",
                "proc_exit",
                "proc_exit2",
                "proc_fork",
                "proc_fork2",
                "proc_signal",
                "proc_signal2",
                "task_new",
                "task_new2",
            ][..],
        ),
        (
            "memory",
            &[
                "mark_victim",
                "rss_stat",
                "sys_enter",
                "sys_exit",
                "sys_switch",
                "task_new",
                "task_new2",
            ][..],
        ),
        (
            "syscalls,memory",
            &[
                "mark_victim",
                "rss_stat",
                "sys_enter",
                "sys_exit",
                "sys_switch",
                "task_new",
                "task_new2",
            ][..],
        ),
        (
            "--bench-floor",
            &[
                "floor_enter",
                "floor_exit",
                "floor_newtask",
                "floor_newtask2",
                "floor_oom",
                "floor_rss_stat",
                "floor_switch",
            ][..],
        ),
    ] {
        let args: Vec<&str> = if sections.starts_with("--") {
            vec![sections, "--sections", "memory"]
        } else {
            let mut words = sections.split(' ');
            let mut v = vec!["--sections", words.next().unwrap()];
            v.extend(words);
            v
        };
        let mut tr = tracer()
            .args(&args)
            .args(["--pid", &sleeper.0.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _stderr = wait_for_stderr(&mut tr, "tracing");
        let mut want = want.to_vec();
        // Where mark_victim passes only the victim's pid, the memory section also watches
        // SIGKILLs to find the victim's task (floor: an empty signal_generate program).
        if pid_victim && sections.contains("memory") && !sections.starts_with("--") {
            want.push("oom_sigkill");
        }
        if pid_victim && sections == "--bench-floor" {
            want.push("floor_signal");
        }
        // The memory section's descriptor scan, which sys_enter tail-calls (loaded, not
        // attached).
        if sections.contains("memory") && !sections.starts_with("--") {
            want.push("sys_enter_fds");
        }
        want.sort_unstable();
        assert_eq!(prog_names_of(tr.id()), want, "{args:?}");
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(tr.id() as i32, libc::SIGTERM) };
        assert!(wait_output(tr, Duration::from_secs(10)).status.success());
    }
    drop(sleeper);

    let out = run(tracer().env_remove("LD_LIBRARY_PATH").args([
        "--output",
        "json",
        "--sections",
        "syscalls",
        "--",
        WORKLOAD,
        "mmap",
        "2",
    ]));
    let r = final_report(&out);
    assert!(r.get("memory").is_none() && r.get("fds").is_none() && r.get("oom_kills").is_none());

    // Memory alone still folds in the syscalls it needs.
    let out = run(tracer().env_remove("LD_LIBRARY_PATH").args([
        "--output",
        "json",
        "--sections",
        "memory",
        "--",
        WORKLOAD,
        "mmap",
        "2",
    ]));
    let r = final_report(&out);
    let anon = num(&r["memory"]["mmap"]["anon_mapped_bytes"]);
    assert!((2.0 * MIB..3.0 * MIB).contains(&anon), "{anon}");
    assert!(r["fds"].is_object() && r["oom_kills"].is_array());

    // The benchmark floor attaches the memory hooks' empty programs and reports nothing.
    let out = run(tracer().env_remove("LD_LIBRARY_PATH").args([
        "--bench-floor",
        "--sections",
        "memory",
        "--",
        WORKLOAD,
        "mmap",
        "2",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("floor programs attached"));
}
