//! Running one command for the benchmark: its output lines with their arrival times, its
//! exit status and rusage, and, watched from a side thread, its peak RSS, the BPF programs
//! it loaded (their run time, read after it exits), and the lifetime of a workload process
//! among its descendants.
//!
//! Every command runs in its own process group, so that a timeout or Ctrl-C ends the whole
//! tree it started.
use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsString,
    fs,
    io::{self, BufRead, BufReader, Read},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::{CommandExt, ExitStatusExt},
    },
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, RecvTimeoutError},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// How often the side thread samples the peak RSS and looks for new BPF programs.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// How often it looks for the workload process before it has appeared.
const SEARCH_EVERY: Duration = Duration::from_millis(1);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM set a flag instead of killing xtask, so that the run in progress is
/// ended and the sysctl the benchmark changed is restored on the way out.
pub fn install_interrupt_handler() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic, which
        // is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub fn check_interrupted() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// One line a command wrote, and when it arrived.
#[derive(Clone, Debug)]
pub struct Line {
    pub at: Instant,
    pub stderr: bool,
    pub text: String,
}

/// What the side thread watches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Watch {
    /// Peak RSS (VmHWM) of the command's own process.
    pub rss: bool,
    /// Take a reference to every BPF program the command loads, to read their run time
    /// (kernel.bpf_stats_enabled) once it has exited.
    pub progs: bool,
    /// Time the descendant with this comm from its exec to its exit.
    pub workload: Option<&'static str>,
}

/// The BPF programs' own run time, summed over the programs a command loaded.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProgStats {
    pub programs: usize,
    pub run_cnt: u64,
    pub run_time_ns: u64,
}

impl ProgStats {
    pub fn ns_per_run(&self) -> Option<f64> {
        (self.run_cnt > 0).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub maxrss_kib: u64,
    pub faults: u64,
    pub ctx_switches: u64,
}

/// A command that has ended.
pub struct Finished {
    pub status: ExitStatus,
    pub wall: Duration,
    /// rusage of the command and of the children it waited for (wait4).
    pub usage: Usage,
    pub lines: Vec<Line>,
    pub timed_out: bool,
    pub peak_rss_kib: Option<u64>,
    pub progs: Option<ProgStats>,
    /// The workload's lifetime, or why it could not be measured.
    pub workload: Option<Result<Duration, String>>,
}

impl Finished {
    pub fn text(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(&l.text);
            s.push('\n');
        }
        s
    }

    pub fn stdout(&self) -> String {
        let mut s = String::new();
        for l in self.lines.iter().filter(|l| !l.stderr) {
            s.push_str(&l.text);
            s.push('\n');
        }
        s
    }

    /// The last few lines of stderr, on one line, for error messages.
    pub fn stderr_tail(&self) -> String {
        stderr_tail_of(&self.lines)
    }

    /// Fails unless the command exited with status 0 in time.
    pub fn ok(&self) -> Result<()> {
        if self.timed_out {
            bail!("timed out after {:.0} s", self.wall.as_secs_f64());
        }
        if !self.status.success() {
            bail!("{}: {}", self.status, self.stderr_tail());
        }
        Ok(())
    }
}

/// A running command.
pub struct Proc {
    child: Child,
    pid: i32,
    pidfd: OwnedFd,
    pub spawned: Instant,
    rx: mpsc::Receiver<Line>,
    lines: Vec<Line>,
    monitor: Option<(Arc<AtomicBool>, JoinHandle<Watched>)>,
    reaped: bool,
}

impl Proc {
    pub fn spawn(argv: &[OsString], watch: Watch) -> Result<Proc> {
        let (prog, args) = argv.split_first().context("empty command")?;
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", prog.to_string_lossy()))?;
        let pid = child.id() as i32;
        // Our child, not reaped yet: the pid cannot have been reused.
        let pidfd = pidfd_open(pid).context("pidfd_open")?;
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            read_lines(out, false, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            read_lines(err, true, tx);
        }
        let monitor = (watch.rss || watch.progs || watch.workload.is_some()).then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            (stop, thread::spawn(move || monitor(pid, watch, &flag)))
        });
        Ok(Proc {
            child,
            pid,
            pidfd,
            spawned,
            rx,
            lines: Vec::new(),
            monitor,
            reaped: false,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn exited(&self) -> bool {
        poll_readable(&self.pidfd, Duration::ZERO)
    }

    /// Waits up to `timeout` for the first line that matches; `None` if none came before
    /// the timeout, the end of the output, or an interrupt.
    pub fn wait_line(&mut self, pred: impl Fn(&Line) -> bool, timeout: Duration) -> Option<Line> {
        if let Some(l) = self.lines.iter().find(|l| pred(l)) {
            return Some(l.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            if interrupted() {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(l) => {
                    let hit = pred(&l);
                    self.lines.push(l.clone());
                    if hit {
                        return Some(l);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// What the command has written so far, stderr's last lines, for error messages.
    pub fn stderr_so_far(&mut self) -> String {
        while let Ok(l) = self.rx.try_recv() {
            self.lines.push(l);
        }
        stderr_tail_of(&self.lines)
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: plain kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(self.pid, sig) };
    }

    /// Waits for the command to end (killing its process group after `timeout` or on
    /// Ctrl-C), then collects everything about the run.
    pub fn wait(mut self, timeout: Duration) -> Result<Finished> {
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let mut killed = false;
        while !poll_readable(&self.pidfd, Duration::from_millis(100)) {
            if !killed && (interrupted() || Instant::now() >= deadline) {
                timed_out = !interrupted();
                kill_group(self.pid);
                killed = true;
            }
        }
        // Anything the command left behind in its group (it should have ended already).
        kill_group(self.pid);
        let (status, usage) = wait4(self.pid)?;
        self.reaped = true;
        let ended = Instant::now();
        let watched = self.monitor.take().map(|(stop, h)| {
            stop.store(true, Ordering::SeqCst);
            h.join().unwrap_or_default()
        });
        // The output ends when the last writer closes its end; wait a little for it.
        let drain_until = Instant::now() + Duration::from_secs(2);
        let mut lines = std::mem::take(&mut self.lines);
        while let Some(left) = drain_until.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(l) => lines.push(l),
                Err(_) => break,
            }
        }
        check_interrupted()?;
        let (peak_rss_kib, progs, workload) = match watched {
            Some(w) => (
                w.peak_rss_kib,
                w.progs.map(|fds| prog_stats(&fds, &w.sightings)),
                w.workload,
            ),
            None => (None, None, None),
        };
        Ok(Finished {
            status,
            wall: ended - self.spawned,
            usage,
            lines,
            timed_out,
            peak_rss_kib,
            progs,
            workload,
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.reaped {
            kill_group(self.pid);
            let _ = self.child.wait();
        }
    }
}

fn read_lines(r: impl Read + Send + 'static, stderr: bool, tx: mpsc::Sender<Line>) {
    thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let at = Instant::now();
                    let text = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_string();
                    if tx.send(Line { at, stderr, text }).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

#[derive(Default)]
struct Watched {
    peak_rss_kib: Option<u64>,
    /// Our references to the tool's programs, by id.
    progs: Option<Vec<(u64, OwnedFd)>>,
    /// How many scans saw each program. Only programs seen by two scans or more count:
    /// feature probes at start-up live for a few milliseconds, the real programs for the
    /// whole run (and the last scans may catch the tool tearing down).
    sightings: BTreeMap<u64, u32>,
    workload: Option<Result<Duration, String>>,
}

enum WorkloadState {
    Unwatched,
    Searching(&'static str),
    Running(OwnedFd, Instant),
    Done(Result<Duration, String>),
}

/// The side thread: samples the peak RSS, takes references to new BPF programs, and times
/// the workload from the moment its comm appears (its exec) to its exit (its pidfd).
fn monitor(pid: i32, watch: Watch, stop: &AtomicBool) -> Watched {
    let mut out = Watched {
        progs: watch.progs.then(Vec::new),
        ..Default::default()
    };
    let mut seen = BTreeSet::new();
    let mut state = match watch.workload {
        Some(comm) => WorkloadState::Searching(comm),
        None => WorkloadState::Unwatched,
    };
    let mut next_sample = Instant::now();
    loop {
        // The workload first: its end must be seen before the stop request is.
        state = match state {
            WorkloadState::Searching(comm) => match find_descendant(pid, comm) {
                Some(p) => {
                    let start = Instant::now();
                    match pidfd_open(p) {
                        Ok(fd) => WorkloadState::Running(fd, start),
                        Err(e) => WorkloadState::Done(Err(format!(
                            "{comm} ({p}) ended before it could be watched: {e}"
                        ))),
                    }
                }
                None => {
                    thread::sleep(SEARCH_EVERY);
                    WorkloadState::Searching(comm)
                }
            },
            WorkloadState::Running(fd, start) => {
                if poll_readable(&fd, Duration::from_millis(5)) {
                    WorkloadState::Done(Ok(start.elapsed()))
                } else {
                    WorkloadState::Running(fd, start)
                }
            }
            other => {
                thread::sleep(Duration::from_millis(5));
                other
            }
        };
        let stopping = stop.load(Ordering::SeqCst);
        if stopping || Instant::now() >= next_sample {
            if watch.rss
                && let Some(kib) = vm_hwm_kib(pid)
            {
                out.peak_rss_kib = Some(out.peak_rss_kib.unwrap_or(0).max(kib));
            }
            if let Some(fds) = out.progs.as_mut() {
                for id in grab_programs(pid, &mut seen, fds) {
                    *out.sightings.entry(id).or_default() += 1;
                }
            }
            next_sample = Instant::now() + SAMPLE_EVERY;
        }
        if stopping {
            break;
        }
    }
    out.workload = match state {
        WorkloadState::Unwatched => None,
        WorkloadState::Searching(comm) => Some(Err(format!("no {comm} process was seen"))),
        WorkloadState::Running(fd, start) => Some(if poll_readable(&fd, Duration::ZERO) {
            Ok(start.elapsed())
        } else {
            Err("the workload outlived the command".into())
        }),
        WorkloadState::Done(r) => Some(r),
    };
    out
}

/// The first process named `comm` in the tree under `root` (root included).
fn find_descendant(root: i32, comm: &str) -> Option<i32> {
    let mut stack = vec![root];
    let mut visited = 0;
    while let Some(p) = stack.pop() {
        visited += 1;
        if visited > 10_000 {
            break;
        }
        let Ok(proc) = procfs::process::Process::new(p) else {
            continue;
        };
        if proc.stat().is_ok_and(|s| s.comm == comm) {
            return Some(p);
        }
        if let Ok(tasks) = proc.tasks() {
            for t in tasks.flatten() {
                if let Ok(children) = t.children() {
                    stack.extend(children.into_iter().map(|c| c as i32));
                }
            }
        }
    }
    None
}

fn vm_hwm_kib(pid: i32) -> Option<u64> {
    procfs::process::Process::new(pid)
        .ok()?
        .status()
        .ok()?
        .vmhwm
}

/// A `key:\tvalue` number from an fdinfo file.
fn fdinfo_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().parse().ok())
}

/// Opens every BPF program `pid` holds (program fds and links both name it by prog_id)
/// that we have not opened yet, and returns the ids it holds now. Holding our own fd keeps
/// the program, and its counters, alive after the command exits.
fn grab_programs(
    pid: i32,
    seen: &mut BTreeSet<u64>,
    fds: &mut Vec<(u64, OwnedFd)>,
) -> BTreeSet<u64> {
    let mut held = BTreeSet::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return held;
    };
    for entry in dir.flatten() {
        let Ok(text) = fs::read_to_string(entry.path()) else {
            continue;
        };
        let Some(id) = fdinfo_field(&text, "prog_id") else {
            continue;
        };
        held.insert(id);
        if seen.insert(id)
            && let Ok(fd) = prog_fd_by_id(id as u32)
        {
            fds.push((id, fd));
        }
    }
    held
}

fn prog_stats(fds: &[(u64, OwnedFd)], sightings: &BTreeMap<u64, u32>) -> ProgStats {
    let mut s = ProgStats::default();
    let lasting = |id: &u64| sightings.get(id).is_some_and(|&n| n >= 2);
    for (_, fd) in fds.iter().filter(|(id, _)| lasting(id)) {
        let Ok(text) = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())) else {
            continue;
        };
        s.programs += 1;
        s.run_cnt += fdinfo_field(&text, "run_cnt").unwrap_or(0);
        s.run_time_ns += fdinfo_field(&text, "run_time_ns").unwrap_or(0);
    }
    s
}

/// `union bpf_attr` for BPF_*_GET_FD_BY_ID.
#[repr(C)]
struct GetFdById {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;

fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let attr = GetFdById {
        id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: bpf(2) reads `size` bytes of a live, initialised attr; a non-negative result
    // is a new descriptor that we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_GET_FD_BY_ID,
            &attr as *const GetFdById,
            std::mem::size_of::<GetFdById>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; a non-negative result is a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// True when the fd is readable within `timeout` (a pidfd: the process has exited).
fn poll_readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut p, 1, timeout.as_millis().min(i32::MAX as u128) as i32) };
    r > 0
}

fn kill_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

fn wait4(pid: i32) -> Result<(ExitStatus, Usage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid out-pointers for the duration of the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).context("wait4");
        }
    }
    let usage = Usage {
        maxrss_kib: ru.ru_maxrss as u64,
        faults: (ru.ru_minflt + ru.ru_majflt) as u64,
        ctx_switches: (ru.ru_nvcsw + ru.ru_nivcsw) as u64,
    };
    Ok((ExitStatus::from_raw(status), usage))
}

/// The last two non-empty stderr lines, on one line, for error messages.
fn stderr_tail_of(lines: &[Line]) -> String {
    let err: Vec<&str> = lines
        .iter()
        .filter(|l| l.stderr && !l.text.trim().is_empty())
        .map(|l| l.text.trim())
        .collect();
    err[err.len().saturating_sub(2)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_fields_are_read_by_key() {
        let text = "pos:\t0\nprog_type:\t17\nprog_id:\t667\nrun_time_ns:\t12345\nrun_cnt:\t99\n";
        assert_eq!(fdinfo_field(text, "prog_id"), Some(667));
        assert_eq!(fdinfo_field(text, "run_time_ns"), Some(12345));
        assert_eq!(fdinfo_field(text, "run_cnt"), Some(99));
        assert_eq!(fdinfo_field(text, "prog"), None);
    }

    #[test]
    fn a_commands_status_and_output_are_kept() {
        let argv: Vec<OsString> = ["sh", "-c", "echo out; echo err >&2; exit 3"]
            .iter()
            .map(OsString::from)
            .collect();
        let f = Proc::spawn(&argv, Watch::default())
            .unwrap()
            .wait(Duration::from_secs(10))
            .unwrap();
        assert_eq!(f.status.code(), Some(3));
        assert_eq!(f.stdout(), "out\n");
        assert_eq!(f.stderr_tail(), "err");
        assert!(f.ok().is_err());
    }
}
