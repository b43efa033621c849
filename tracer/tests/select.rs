//! Selectors: `--comm NAME`, `--cgroup PATH` and `--exe PATH` take in the processes they
//! match when tracing starts and whenever one execs (by that name, that program) or is
//! moved into the cgroup later, as a supervisor restarts a service; each counted exactly,
//! under the selector's entry, and nothing of other processes.
mod common;

use std::{
    ffi::CString,
    io::{BufRead, BufReader, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::*;
use serde_json::Value;

/// Starts tracer with `args` and waits until it traces.
fn start(args: &[&str]) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut tr = tracer()
        .args(["--output", "json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = wait_for_stderr(&mut tr, "tracing");
    (tr, err)
}

/// Stops tracer with SIGTERM; its final report.
fn stop(tr: Child) -> Value {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tr.id() as i32, libc::SIGTERM) };
    final_report(&wait_output(tr, Duration::from_secs(30)))
}

/// The entry of the selector labelled `label`.
fn entry<'a>(r: &'a Value, label: &str) -> &'a Value {
    r["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["selector"] == label)
        .unwrap_or_else(|| panic!("no entry {label}: {}", r["processes"]))
}

fn getppids(v: &Value) -> u64 {
    v["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "getppid")
        .map(|r| r["calls"].as_u64().unwrap())
        .sum()
}

/// Starts `exe` (the workload) to make 100 getppid once told "go"; returns once it is
/// ready.
fn waiting(exe: &Path) -> Child {
    ready_workload(exe.to_str().unwrap(), &["syscalls", "100", "0", "0"])
}

/// Runs `cmd` to its end, successfully.
fn complete(cmd: &mut Command) {
    let status = cmd.stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_name_takes_in_its_processes_now_and_at_each_restart() {
    let Some(_g) = ebpf_test() else { return };
    // The workload under a name of this test's own (a process's name is its executable's).
    let name = format!("tsel{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(format!("tracer-test-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(&name);
    std::fs::copy(WORKLOAD, &exe).unwrap();
    // One runs already, waiting.
    let mut first = waiting(&exe);
    let (tr, _err) = start(&["--comm", &name]);
    first.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert!(first.wait().unwrap().success());
    // Restarted twice, as a supervisor would; another name is not taken in.
    complete(Command::new(&exe).args(["syscalls", "100", "0", "0"]));
    complete(Command::new(&exe).args(["syscalls", "100", "0", "0"]));
    complete(Command::new(WORKLOAD).args(["syscalls", "100", "0", "0"]));
    let r = stop(tr);
    std::fs::remove_dir_all(&dir).unwrap();
    let skipped = r["drops"]["skipped_runs"].as_u64().unwrap_or(0);
    let got = getppids(entry(&r, &format!("comm:{name}")));
    assert!(
        got <= 300 && 300 - got <= skipped,
        "{got} getppid, {skipped} runs skipped"
    );
    assert_eq!(getppids(&r), got, "only the named processes");
    assert_eq!(r["pids"], serde_json::json!([]));
    assert_eq!(r["life"]["execs"], 2, "{}", r["life"]);
}

/// `--comm` matches a process by its main thread's name, as pgrep does, whenever that
/// name changes: a process renaming itself to the name (prctl) is taken in, one renaming
/// itself away leaves, and one naming itself back through /proc/self/comm (another path
/// to the same kernel rename) is taken in again. The workload makes 1000 `getppid`s under the name,
/// 500 away, 2000 back under it: exactly 3000 counted, and as its own calls 3001 (the
/// prctl that renamed it away began while it was traced); two `taken` events.
#[test]
fn a_rename_takes_a_process_in_and_out() {
    let Some(_g) = ebpf_test() else { return };
    let name = format!("trn{}", std::process::id() % 100_000);
    let mut work = KillOnDrop(
        Command::new(WORKLOAD)
            .args(["renames", &name, "1000", "500", "2000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = work.0.id();
    let mut out = BufReader::new(work.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let (tr, _err) = start(&["--comm", &name]);
    let mut stdin = work.0.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "away");
    stdin.write_all(b"back\n").unwrap();
    assert!(work.0.wait().unwrap().success());
    let r = stop(tr);
    let skipped = r["drops"]["skipped_runs"].as_u64().unwrap_or(0);
    let sel = entry(&r, &format!("comm:{name}"));
    let got = getppids(sel);
    assert!(
        got <= 3000 && 3000 - got <= skipped,
        "{got} getppid, {skipped} runs skipped"
    );
    assert_eq!(getppids(&r), got, "only while named");
    let own = r["per_process"]["listed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("no entry of {pid}: {}", r["per_process"]));
    assert_eq!(own["joined"], "matched");
    let calls = own["calls"].as_u64().unwrap();
    assert!(
        calls <= 3001 && 3001 - calls <= skipped,
        "own calls {calls}, {skipped} runs skipped"
    );
    let taken: Vec<&Value> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "taken")
        .collect();
    assert_eq!(taken.len(), 2, "{}", r["events"]);
    for e in taken {
        assert_eq!(e["pid"], pid);
        assert_eq!(e["by"], "comm");
        assert_eq!(e["cause"], "name");
    }
    assert_eq!(r["life"]["taken_in"], 2, "{}", r["life"]);
}

/// Starts the workload with `args` inside `cgroup` (it moves itself there before its
/// exec, as a supervisor does) and waits for its end.
fn in_cgroup(cgroup: &Path, args: &[&str]) {
    let procs = CString::new(
        cgroup
            .join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    let mut cmd = Command::new(WORKLOAD);
    cmd.args(args);
    // SAFETY: only open/write/close (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
    complete(&mut cmd);
}

#[test]
fn a_cgroup_takes_in_what_is_moved_into_it_and_their_children() {
    let Some(_g) = ebpf_test() else { return };
    let Some(cg) = Cgroup::new(None) else { return };
    let path: PathBuf = cg.dir.clone();
    let (tr, _err) = start(&["--cgroup", path.to_str().unwrap()]);
    in_cgroup(&path, &["syscalls", "100", "0", "0"]);
    // Restarted, and one that forks 3 children making 10 getppid each.
    in_cgroup(&path, &["syscalls", "100", "0", "0"]);
    in_cgroup(&path, &["forks", "3", "10"]);
    // Outside the cgroup: not taken in.
    complete(Command::new(WORKLOAD).args(["syscalls", "100", "0", "0"]));
    let r = stop(tr);
    let skipped = r["drops"]["skipped_runs"].as_u64().unwrap_or(0);
    let got = getppids(entry(&r, &format!("cgroup:{}", path.display())));
    assert!(
        got <= 230 && 230 - got <= skipped,
        "{got} getppid, {skipped} runs skipped"
    );
    assert_eq!(getppids(&r), got, "only the cgroup's processes");
    assert_eq!(r["life"]["children_forked"], 3, "{}", r["life"]);
}

/// `--exe`: a program running when tracing starts, restarted by its path, then upgraded
/// (a new file renamed over the path, as package managers do) and restarted at once by the
/// path (matched by the file name: tracer has not looked at the path again yet), and later
/// through a link (matched by the new file's identity); the same program at another path is
/// not taken in.
#[test]
fn an_executable_takes_in_its_processes_through_an_upgrade() {
    let Some(_g) = ebpf_test() else { return };
    let dir = std::env::temp_dir().join(format!("tracer-test-exe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("svc");
    std::fs::copy(WORKLOAD, &exe).unwrap();
    let mut first = waiting(&exe);
    let (tr, _err) = start(&["--exe", exe.to_str().unwrap()]);
    first.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert!(first.wait().unwrap().success());
    complete(Command::new(&exe).args(["syscalls", "100", "0", "0"]));
    // The upgrade: a new file (another inode) takes the path.
    let new = dir.join("svc.new");
    std::fs::copy(WORKLOAD, &new).unwrap();
    std::fs::rename(&new, &exe).unwrap();
    complete(Command::new(&exe).args(["syscalls", "100", "0", "0"]));
    // Through a link, once tracer has looked at the path again (every second).
    let link = dir.join("link");
    std::os::unix::fs::symlink(&exe, &link).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    complete(Command::new(&link).args(["syscalls", "100", "0", "0"]));
    // The same program elsewhere: not taken in.
    complete(Command::new(WORKLOAD).args(["syscalls", "100", "0", "0"]));
    let r = stop(tr);
    std::fs::remove_dir_all(&dir).unwrap();
    let skipped = r["drops"]["skipped_runs"].as_u64().unwrap_or(0);
    let got = getppids(entry(&r, &format!("exe:{}", exe.display())));
    assert!(
        got <= 400 && 400 - got <= skipped,
        "{got} getppid, {skipped} runs skipped"
    );
    assert_eq!(getppids(&r), got, "only the program's processes");
    assert_eq!(r["life"]["execs"], 3, "{}", r["life"]);
}

/// A selector's processes have an anatomy each, for the first 4 that still run: with 5
/// matched and waiting, 4 are read, each as /proc shows it (its parent, its descriptors);
/// once one ends, the 4 left are the ones read.
#[test]
fn a_selectors_first_processes_have_an_anatomy_each() {
    let Some(_g) = ebpf_test() else { return };
    let name = format!("tana{}", std::process::id() % 100_000);
    let label = format!("comm:{name}");
    let dir = std::env::temp_dir().join(format!("tracer-test-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(&name);
    std::fs::copy(WORKLOAD, &exe).unwrap();
    let mut works: Vec<KillOnDrop> = (0..5).map(|_| KillOnDrop(waiting(&exe))).collect();
    let pids: Vec<u64> = works.iter().map(|w| w.0.id() as u64).collect();
    let fds: Vec<u64> = pids
        .iter()
        .map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).unwrap().count() as u64)
        .collect();
    let mut tr = tracer()
        .args(["--output", "json", "--interval", "0.3", "--comm", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _err = wait_for_stderr(&mut tr, "tracing");
    let tr_pid = tr.id() as i32;
    // Its reports are read meanwhile: a full pipe would stall it.
    let tr = std::thread::spawn(move || wait_output(tr, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(1000));
    // One ends (told to go: 100 getppid, then it exits).
    let before_end = mono_ns();
    works[0]
        .0
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    assert!(works[0].0.wait().unwrap().success());
    let after_end = mono_ns();
    std::thread::sleep(Duration::from_millis(1000));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tr_pid, libc::SIGTERM) };
    let out = tr.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let (mut before, mut after) = (0, 0);
    for v in json_lines(&out).iter().filter(|v| v["type"] == "interval") {
        let end = v["end_mono_ns"].as_u64().unwrap();
        let members: Vec<&Value> = entry(v, &label)["members"]
            .as_array()
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        let mut read: Vec<u64> = members.iter().map(|m| m["pid"].as_u64().unwrap()).collect();
        read.sort_unstable();
        read.dedup();
        if end < before_end {
            before += 1;
            assert_eq!(read.len(), 4, "{read:?} of {pids:?}");
            assert!(
                read.iter().all(|p| pids.contains(p)),
                "{read:?} of {pids:?}"
            );
        } else if end > after_end {
            after += 1;
            assert_eq!(read, pids[1..], "the 4 left are read");
        }
        // Each as /proc shows it.
        for m in members {
            let k = pids
                .iter()
                .position(|p| *p == m["pid"].as_u64().unwrap())
                .unwrap();
            let a = &m["anatomy"];
            assert_eq!(a["parent"], std::process::id(), "{a}");
            assert_eq!(a["fds"]["total"], fds[k], "{a}");
        }
    }
    assert!(before >= 2 && after >= 2, "before {before}, after {after}");
}
