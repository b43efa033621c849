//! Helpers shared by the integration tests: running tracer and workloads, parsing reports,
//! and serializing tests that load eBPF programs (they would otherwise see each other's
//! programs, and skew each other's timing).
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use serde_json::Value;

pub const TRACER: &str = env!("CARGO_BIN_EXE_tracer");
pub const WORKLOAD: &str = env!("CARGO_BIN_EXE_tracer-workload");

static EBPF: Mutex<()> = Mutex::new(());

/// Says why a test does not run here. Where every test must run (`cargo xtask test` and
/// the kernel matrix set `TRACER_TEST_NO_SKIP`), that is a failure instead.
pub fn skip(why: &str) {
    if std::env::var_os("TRACER_TEST_NO_SKIP").is_some() {
        panic!("this test must run here, but: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Takes the eBPF lock, or returns None (after saying why) when not root.
pub fn ebpf_test() -> Option<MutexGuard<'static, ()>> {
    if !is_root() {
        skip("loading eBPF programs needs root; run `cargo xtask test`");
        return None;
    }
    Some(EBPF.lock().unwrap_or_else(|e| e.into_inner()))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// CLOCK_MONOTONIC in ns: the clock of the reports' `*_mono_ns`.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn tracer() -> Command {
    Command::new(TRACER)
}

/// Runs tracer to completion and returns its output; panics if it does not end in 60 s.
pub fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, Duration::from_secs(60))
}

/// Waits for `child` and collects its output; kills it and panics after `limit`. Its pipes
/// are drained meanwhile, so that a report larger than a pipe cannot stall it.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                p.read_to_end(&mut buf).unwrap();
            }
            buf
        })
    }
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// The JSON objects of an NDJSON report.
pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// The final report of a JSON run (the last line, whose type is "final").
pub fn final_report(out: &Output) -> Value {
    assert!(
        out.status.success() || out.status.code().is_some(),
        "tracer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(out);
    let last = lines.last().unwrap_or_else(|| {
        panic!(
            "no report; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(last["type"], "final");
    last.clone()
}

/// The row of one (x86_64) syscall in a report's merged table.
pub fn row<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    abi_row(report, name, "x86_64")
}

/// The row of one syscall of an ABI (`x86_64`, `i386`) in a report's merged table.
pub fn abi_row<'a>(report: &'a Value, name: &str, abi: &str) -> Option<&'a Value> {
    report["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name && r["abi"] == abi)
}

pub fn calls(report: &Value, name: &str) -> u64 {
    row(report, name).map_or(0, |r| r["calls"].as_u64().unwrap())
}

/// Checks the calls of `name` in a report: exactly `want`, unless the kernel skipped runs
/// of tracer's programs (`drops.skipped_runs`: Linux 7.3 runs the syscall programs
/// preemptibly, and skips a program on a CPU where a run of it is preempted), which can
/// only make the count short, by at most that many.
pub fn assert_calls(report: &Value, name: &str, want: u64) {
    let got = calls(report, name);
    let skipped = report["drops"]["skipped_runs"].as_u64().unwrap_or(0);
    assert!(
        got <= want && want - got <= skipped,
        "{name}: {got} calls counted, {want} made ({skipped} program runs skipped)"
    );
}

/// Starts `tracer ARGS --pid PID` and waits until it says it is tracing; its stdout is
/// piped. Returns it with its stderr (kept open so tracer never writes to a closed pipe).
pub fn attach(pid: u32, args: &[&str]) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut tr = tracer()
        .args(args)
        .args(["--pid", &pid.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = wait_for_stderr(&mut tr, "tracing");
    (tr, stderr)
}

/// Reads stderr lines of a running tracer until one contains `needle`.
pub fn wait_for_stderr(child: &mut Child, needle: &str) -> BufReader<std::process::ChildStderr> {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "tracer ended before saying {needle:?}; it said: {said}"
        );
        if line.contains(needle) {
            return err;
        }
        said.push_str(&line);
    }
}

/// Starts `exe` (a copy of the workload, or WORKLOAD) as `exe --wait ARGS` and returns
/// once it says `ready`: it then waits for a line on stdin ("go") before its counted work.
pub fn ready_workload(exe: &str, args: &[&str]) -> Child {
    let mut c = Command::new(exe)
        .arg("--wait")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(c.stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    c
}

/// An HTTP client for the metrics endpoint and Prometheus: a status is an answer, not an
/// error; nothing waits more than 10 s.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Ids of the eBPF programs a running process holds (from its fds' fdinfo).
pub fn prog_ids_of(pid: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
        for line in info.lines() {
            if let Some(id) = line.strip_prefix("prog_id:") {
                ids.push(id.trim().parse().unwrap());
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Ids of all eBPF programs loaded in the kernel now.
pub fn loaded_prog_ids() -> Vec<u32> {
    aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .map(|p| p.id())
        .collect()
}

/// Waits (up to 5 s; the kernel frees programs after an RCU grace period) until none of
/// `ids` (a tracer's programs, taken while it ran) is loaded any more. Other tracers running
/// at the same time do not disturb this.
pub fn assert_unloaded(ids: &[u32]) {
    assert!(!ids.is_empty(), "no program ids were recorded");
    let start = Instant::now();
    loop {
        let loaded = loaded_prog_ids();
        let left: Vec<&u32> = ids.iter().filter(|id| loaded.contains(id)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still loaded: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A helper process that is killed and reaped when the test ends, even by a failed assert.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A memory cgroup made for one test and removed when the test ends, failed or not: in the
/// cgroup v1 memory hierarchy where there is one, else in the unified (v2) hierarchy.
pub struct Cgroup {
    pub dir: PathBuf,
}

impl Cgroup {
    /// With `limit_bytes`, the memory limit (and no swapping).
    pub fn new(limit_bytes: Option<u64>) -> Option<Cgroup> {
        let v1 = PathBuf::from("/sys/fs/cgroup/memory");
        let v2 = PathBuf::from("/sys/fs/cgroup");
        let (root, limit_file, no_swap) = if v1.join("memory.limit_in_bytes").exists() {
            (v1, "memory.limit_in_bytes", ("memory.swappiness", "0"))
        } else if std::fs::read_to_string(v2.join("cgroup.subtree_control"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))
        {
            (v2, "memory.max", ("memory.swap.max", "0"))
        } else {
            skip("no cgroup v1 memory hierarchy, nor a v2 one with the memory controller");
            return None;
        };
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = root.join(format!("tracer-test-cg-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let cg = Cgroup { dir };
        if let Some(limit) = limit_bytes {
            std::fs::write(cg.dir.join(limit_file), limit.to_string()).unwrap();
            // No swapping in this cgroup: the limit is reached, not dodged (ignored if
            // absent).
            let _ = std::fs::write(cg.dir.join(no_swap.0), no_swap.1);
        }
        Some(cg)
    }

    pub fn add(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let start = Instant::now();
        loop {
            let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: killing a process the test put in its own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if std::fs::remove_dir(&self.dir).is_ok() || start.elapsed() > Duration::from_secs(5) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
