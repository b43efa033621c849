//! What tracer writes where another user can reach it: the report file (`-o`) and the
//! terminal. A file planted by another user in a shared directory is refused, opening never
//! blocks, a failed run leaves an existing report alone, and names that carry terminal
//! control sequences are escaped.
mod common;

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::fs::{PermissionsExt, lchown, symlink},
    path::PathBuf,
    process::Stdio,
    time::Duration,
};

use common::*;

/// A sticky, world-writable directory like /tmp, made for one test and removed after.
struct SharedDir(PathBuf);

impl SharedDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tracer-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        SharedDir(dir)
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const NOBODY: u32 = 65534;

fn assert_refused(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{err}");
}

#[test]
fn a_symlink_planted_by_another_user_is_not_followed() {
    let Some(_g) = ebpf_test() else { return };
    let dir = SharedDir::new("symlink");
    let victim = dir.0.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    // As `nobody` would: a link in the shared directory to root's file.
    let link = dir.0.join("evil-link");
    symlink(&victim, &link).unwrap();
    lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = run(tracer().arg("-o").arg(&link).args(["--", "/bin/true"]));
    assert_refused(&out, "belongs to another user (uid 65534)");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn a_fifo_planted_by_another_user_is_refused_and_nothing_blocks() {
    let Some(_g) = ebpf_test() else { return };
    let dir = SharedDir::new("fifo");
    let fifo = dir.0.join("evil-fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    lchown(&fifo, Some(NOBODY), Some(NOBODY)).unwrap();
    // `run` fails the test if tracer has not ended within 60 s.
    let out = run(tracer().arg("-o").arg(&fifo).args(["--", "/bin/true"]));
    assert_refused(&out, "belongs to another user");

    // A FIFO of one's own with no reader: an error at once, not a wait for ever.
    let own = std::env::temp_dir().join(format!("tracer-test-own-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&own);
    nix::unistd::mkfifo(&own, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out = run(tracer().arg("-o").arg(&own).args(["--", "/bin/true"]));
    std::fs::remove_file(&own).unwrap();
    assert_refused(&out, "a FIFO with no reader");
}

#[test]
fn a_failed_run_leaves_an_existing_report_alone_and_a_good_one_replaces_it() {
    let Some(_g) = ebpf_test() else { return };
    let dir = SharedDir::new("report");
    let report = dir.0.join("r.txt");
    let old = "an earlier report, longer than the next one will be\n".repeat(500);
    std::fs::write(&report, &old).unwrap();
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let out = run(tracer()
        .arg("-o")
        .arg(&report)
        .args(["--pid", &(pid_max + 1).to_string()]));
    assert_refused(&out, "no process with PID");
    assert_eq!(std::fs::read_to_string(&report).unwrap(), old);
    // A failed run does not leave a new, empty file behind either.
    let fresh = dir.0.join("new.txt");
    let out = run(tracer()
        .arg("-o")
        .arg(&fresh)
        .args(["--pid", &(pid_max + 1).to_string()]));
    assert_refused(&out, "no process with PID");
    assert!(!fresh.exists());
    // A run that works replaces the whole file (root's own file in the shared directory).
    let out = run(tracer()
        .args(["--output", "json", "-o"])
        .arg(&report)
        .args(["--", "/bin/true"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(!text.contains("an earlier report"), "{text}");
    assert!(text.trim_end().ends_with('}'), "{text}");
}

#[test]
fn names_with_terminal_controls_are_escaped() {
    let Some(_g) = ebpf_test() else { return };
    // Launched: the thread and exec lines of the report.
    let out = run(tracer().args(["--threads", "--", WORKLOAD, "evilname"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\u{1b}'), "raw ESC in the report: {text:?}");
    assert!(text.contains("\\33[2J\\33[Hfake\\nok"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("ok")),
        "a forged line: {text}"
    );

    // Attached: the process already carries the name (the `tracing` line and the header).
    let mut work = ready_workload(WORKLOAD, &["evilname"]);
    let mut tr = tracer()
        .args(["--threads", "--pid", &work.id().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(tr.stderr.take().unwrap());
    let mut tracing = String::new();
    stderr.read_line(&mut tracing).unwrap();
    work.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    work.wait().unwrap();
    let out = wait_output(tr, Duration::from_secs(30));
    assert!(!tracing.contains('\u{1b}'), "{tracing:?}");
    assert!(tracing.contains("\\33[2J"), "{tracing}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\u{1b}'), "raw ESC in the report: {text:?}");
    assert!(text.contains("\\33[2J\\33[Hfake\\nok"), "{text}");
}

/// Several outputs at once: text on standard output, NDJSON and text in files (`--sink`),
/// each given the same reports in its format. A workload makes 40 getppid calls 50 ms
/// apart: every output counts them, the JSON intervals add up to its final count, and the
/// text file holds what standard output shows.
#[test]
fn several_outputs_get_the_same_reports() {
    let Some(_g) = ebpf_test() else { return };
    let dir = std::env::temp_dir().join(format!("tracer-test-sinks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let (json, text) = (dir.join("r.ndjson"), dir.join("r.txt"));
    let out = run(tracer()
        .args(["--interval", "0.6", "--sink"])
        .arg(format!("json:{}", json.display()))
        .arg("--sink")
        .arg(format!("text:{}", text.display()))
        .args(["--", WORKLOAD, "paced", "40", "50"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let ndjson = std::fs::read_to_string(&json).unwrap();
    let text_file = std::fs::read_to_string(&text).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let lines: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (fin, intervals) = lines.split_last().unwrap();
    assert_eq!(fin["type"], "final");
    assert!(intervals.len() >= 3, "{ndjson}");
    assert_calls(fin, "getppid", 40);
    let by_interval: u64 = intervals.iter().map(|l| calls(l, "getppid")).sum();
    assert_eq!(by_interval, calls(fin, "getppid"));

    assert_eq!(text_file, stdout);
    // The text shows each whole interval the JSON has (not its last, partial one, which
    // the summary covers), then the summary with the same count.
    let text_intervals = stdout
        .lines()
        .filter(|l| l.starts_with("--- ") && l.contains(": last "))
        .count();
    assert_eq!(text_intervals, intervals.len() - 1, "{stdout}");
    let summary = &stdout[stdout.find("=== ").expect("a summary")..];
    let getppid = summary
        .lines()
        .find(|l| l.split_whitespace().next() == Some("getppid"))
        .unwrap_or_else(|| panic!("no getppid row: {summary}"));
    let shown: u64 = getppid.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(shown, calls(fin, "getppid"), "{getppid}");
}
