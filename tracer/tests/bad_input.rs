//! Every error a user can cause prints one plain line on stderr, nothing on stdout, and
//! exits 2 (usage) or 1 (runtime); no panic, no backtrace, nothing left attached.
mod common;

use std::process::{Command, Output};

use common::*;

fn assert_one_line(out: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("tracer: "), "{err}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn usage_errors_exit_2() {
    // These need no privileges: the command line is checked first.
    for (args, needle) in [
        (&["--pid", "abc"][..], "not a PID"),
        (&["--pid", "0"][..], "PID 0"),
        (&["--pid", "1", "--", "true"][..], "not both"),
        (&[][..], "nothing to trace"),
        (
            &["--output", "xml", "--pid", "1"][..],
            "invalid value 'xml'",
        ),
        (
            &["--interval", "-1", "--pid", "1"][..],
            "'-1' is not a positive number of seconds",
        ),
        (
            &["--interval", "1e-9", "--pid", "1"][..],
            "'1e-9' is too short: reports come at most every 0.1 s",
        ),
        (
            &["--duration", "0", "--pid", "1"][..],
            "positive number of seconds",
        ),
        (&["--bogus"][..], "unexpected argument"),
        (&["--comm", "a-name-of-16-byt"][..], "longer than 15 bytes"),
        (
            &["--comm", "node", "--sections", "syscalls"][..],
            "--comm, --cgroup and --exe need the life section",
        ),
        (
            &["--pid", "1", "-o", "r", "--sink", "json:r"][..],
            "r is named by two outputs",
        ),
        (&["--pid", "1", "--sink", "yaml:r"][..], "not a format"),
        (
            &["--pid", "1", "--listen", "host:9464"][..],
            "'host:9464' is not ADDR:PORT",
        ),
        (&["--pid", "1", "--listen", "70000"][..], "is not ADDR:PORT"),
        (&["--pid", "1", "--label", ""][..], "a label is 1 to 128"),
        (
            &["--pid", "1", "--otlp", "https://c:4318/v1/metrics"][..],
            "https is not supported",
        ),
        (
            &["--pid", "1", "--otlp", "c:4318"][..],
            "is not an http:// URL",
        ),
    ] {
        assert_one_line(&run(tracer().args(args)), 2, needle);
    }
}

#[test]
fn runtime_errors_exit_1() {
    let Some(_g) = ebpf_test() else { return };
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let missing = (pid_max + 1).to_string();
    for (args, needle) in [
        (vec!["--pid", missing.as_str()], "no process with PID"),
        // PID 2 is kthreadd on Linux.
        (vec!["--pid", "2"], "kernel thread"),
        (
            vec!["-o", "/nonexistent-dir/report.txt", "--pid", "1"],
            "cannot write /nonexistent-dir/report.txt",
        ),
        (vec!["--", "no-such-command-tracer"], "command not found"),
        (
            vec!["--", "/etc/passwd"],
            "cannot execute '/etc/passwd': permission denied",
        ),
        (vec!["--", "/etc"], "cannot execute '/etc': is a directory"),
        (
            vec!["--cgroup", "/nonexistent-cgroup"],
            "--cgroup /nonexistent-cgroup: No such file or directory",
        ),
        (
            vec!["--cgroup", "/proc"],
            "--cgroup /proc: not a cgroup directory",
        ),
        (
            vec!["--exe", "/nonexistent-exe"],
            "--exe /nonexistent-exe: No such file or directory",
        ),
        (vec!["--exe", "/proc"], "--exe /proc: not a regular file"),
        (
            vec!["--pid", "1", "--sink", "json:/nonexistent-dir/r"],
            "cannot write /nonexistent-dir/r",
        ),
    ] {
        assert_one_line(&run(tracer().args(&args)), 1, needle);
    }
    // An address another program holds, and one tracer may not take.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_one_line(
        &run(tracer().args(["--pid", "1", "--listen", &addr])),
        1,
        &format!("cannot listen on {addr}: address already in use"),
    );
    assert_one_line(
        &run(tracer().args(["--pid", "1", "--listen", "192.0.2.1:9464"])),
        1,
        "cannot listen on 192.0.2.1:9464: cannot assign requested address",
    );
}

#[test]
fn unprivileged_user_is_told_plainly() {
    if !is_root() {
        skip("needs root to drop to an unprivileged user");
        return;
    }
    // setpriv (util-linux) drops to nobody with no capabilities.
    let out = run(Command::new("setpriv").args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        TRACER,
        "--pid",
        "1",
    ]));
    assert_one_line(&out, 1, "permission denied");
}

/// A kernel without BTF: hidden here by an empty tmpfs over /sys/kernel/btf in a private
/// mount namespace (unshare, util-linux), so the real check runs, with no test hook.
#[test]
fn missing_kernel_btf_is_one_line() {
    let Some(_g) = ebpf_test() else { return };
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let script = format!(
        "mount -t tmpfs none /sys/kernel/btf && exec {TRACER} --pid {}",
        sleeper.id()
    );
    let out = run(Command::new("unshare").args(["-m", "sh", "-c", &script]));
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_one_line(&out, 1, "kernel BTF is missing");
}
