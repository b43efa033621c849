//! What to trace: checking PIDs the user gave, launching a command so that it is counted
//! from its exec, and noticing when traced processes exit.
use std::{
    ffi::{CString, OsStr, OsString},
    os::{
        fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use nix::{
    errno::Errno,
    fcntl::OFlag,
    sys::wait::{WaitPidFlag, WaitStatus, waitpid},
    unistd::{ForkResult, Pid, fork, pipe2},
};

use crate::model::{CommandExit, ProcessInfo};

/// PF_KTHREAD in /proc/PID/stat's flags.
const PF_KTHREAD: u32 = 0x0020_0000;
/// Capability bits (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Fails with one plain line unless this process may load tracing programs.
pub fn check_privileges() -> Result<()> {
    let status = procfs::process::Process::myself()
        .and_then(|p| p.status())
        .context("cannot read /proc/self/status")?;
    let has = |cap: u32| status.capeff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    bail!(
        "permission denied: tracing needs root, or the CAP_BPF and CAP_PERFMON capabilities (try sudo)"
    )
}

/// Checks a PID given with --pid and names it. A thread id is resolved to its process.
pub fn resolve_pid(pid: u32) -> Result<ProcessInfo> {
    let proc = procfs::process::Process::new(pid as i32)
        .map_err(|_| anyhow!("no process with PID {pid}"))?;
    let stat = proc
        .stat()
        .map_err(|_| anyhow!("no process with PID {pid}"))?;
    if stat.flags & PF_KTHREAD != 0 {
        bail!(
            "PID {pid} ({}) is a kernel thread: it makes no syscalls to trace",
            stat.comm
        );
    }
    if stat.state == 'Z' {
        bail!("PID {pid} ({}) has already exited (zombie)", stat.comm);
    }
    let tgid = proc.status().map(|s| s.tgid as u32).unwrap_or(pid);
    if tgid != pid {
        eprintln!("tracer: {pid} is a thread of process {tgid}; tracing the whole process");
        return resolve_pid(tgid);
    }
    Ok(ProcessInfo {
        pid,
        comm: stat.comm,
    })
}

/// A `pidfd` that becomes readable when the process exits.
pub fn pidfd_open(pid: u32) -> Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; a non-negative result is a new fd we own.
    let fd = unsafe { libc_syscall_pidfd_open(pid as i32) };
    if fd < 0 {
        return Err(Errno::last()).with_context(|| format!("cannot watch PID {pid}"));
    }
    // SAFETY: fd is a fresh descriptor returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

unsafe fn libc_syscall_pidfd_open(pid: i32) -> i64 {
    // SAFETY: forwarded from the caller.
    unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) }
}

/// A command forked and waiting, just before its exec, for tracer to start counting.
pub struct Launched {
    pub info: ProcessInfo,
    go: OwnedFd,
    exec_err: OwnedFd,
    program: PathBuf,
    /// With its output captured: the read end of the pipe its stdout and stderr write to.
    output: Option<OwnedFd>,
}

/// Why `name` cannot be run, as a shell would say: a directory, a file without execute
/// permission, or nothing of that name (in PATH, for a bare name).
fn not_executable(name: &OsStr) -> anyhow::Error {
    use std::os::unix::fs::PermissionsExt;
    let shown = name.to_string_lossy();
    let candidates: Vec<PathBuf> = if name.as_bytes().contains(&b'/') {
        vec![PathBuf::from(name)]
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
            .unwrap_or_default()
    };
    for c in candidates {
        match std::fs::metadata(&c) {
            Ok(m) if m.is_dir() => return anyhow!("cannot execute '{shown}': is a directory"),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                return anyhow!("cannot execute '{shown}': permission denied");
            }
            _ => {}
        }
    }
    anyhow!("cannot execute '{shown}': command not found")
}

/// Forks `argv`; the child stops in a `read` of a pipe just before `execve`. Must be called
/// before any other thread exists (before the async runtime starts). With `capture` (the
/// live view holds the terminal), the command's stdin is /dev/null and its stdout and
/// stderr one pipe, whose read end [`Launched::take_output`] gives; else it shares
/// tracer's.
pub fn launch(argv: &[OsString], capture: bool) -> Result<Launched> {
    let name = argv.first().ok_or_else(|| anyhow!("empty command"))?;
    let program = which::which(name).map_err(|_| not_executable(name))?;
    let cstr = |s: &[u8]| CString::new(s).map_err(|_| anyhow!("command contains a NUL byte"));
    let path = cstr(program.as_os_str().as_bytes())?;
    let args = argv
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    let (go_r, go_w) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    // Opened before the fork: the child only moves them into place (dup2). Close-on-exec,
    // so that the command keeps only its 0, 1 and 2 of them.
    let stdio = if capture {
        // std opens with O_CLOEXEC.
        let null = OwnedFd::from(
            std::fs::File::open("/dev/null")
                .context("cannot open /dev/null for the command's input")?,
        );
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
        Some((null, out_r, out_w))
    } else {
        None
    };
    // SAFETY: single-threaded here (checked by the caller's contract); the child calls only
    // async-signal-safe functions (close, dup2, read, execv, write, _exit) before exec.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(go_w);
            drop(err_r);
            if let Some((null, _, out_w)) = &stdio {
                let (null, out) = (null.as_raw_fd(), out_w.as_raw_fd());
                // SAFETY: dup2 is async-signal-safe; the descriptors are open (ours). The
                // copies are not close-on-exec: the command inherits them as 0, 1 and 2.
                let ok = unsafe {
                    nix::libc::dup2(null, 0) == 0
                        && nix::libc::dup2(out, 1) == 1
                        && nix::libc::dup2(out, 2) == 2
                };
                if !ok {
                    // SAFETY: _exit is async-signal-safe and never returns.
                    unsafe { nix::libc::_exit(127) }
                }
            }
            let mut b = [0u8; 1];
            // Blocks until tracer has put this pid in the kernel filter. The pipe ends are
            // close-on-exec, so no syscall stands between this read and execve. End of file
            // means tracer failed (or died) before starting it: then it does not run at all.
            if nix::unistd::read(go_r.as_fd(), &mut b) != Ok(1) {
                // SAFETY: _exit is async-signal-safe and never returns.
                unsafe { nix::libc::_exit(127) }
            }
            let e = nix::unistd::execv(&path, &args).unwrap_err();
            let _ = nix::unistd::write(&err_w, &(e as i32).to_ne_bytes());
            // SAFETY: _exit is async-signal-safe and never returns.
            unsafe { nix::libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(go_r);
            drop(err_w);
            // The child's copies stay open in it; ours of the write end would keep the pipe
            // from ever ending.
            let output = stdio.map(|(_, out_r, _)| out_r);
            let comm = program
                .file_name()
                .map(|n| n.to_string_lossy().chars().take(15).collect())
                .unwrap_or_default();
            Ok(Launched {
                info: ProcessInfo {
                    pid: child.as_raw() as u32,
                    comm,
                },
                go: go_w,
                exec_err: err_r,
                program,
                output,
            })
        }
    }
}

impl Launched {
    /// The command's output (with `capture`), once.
    pub fn take_output(&mut self) -> Option<OwnedFd> {
        self.output.take()
    }

    /// Waits until the child is blocked in its `read` (syscall 0), so that everything it
    /// does after tracer starts counting is its exec and what follows.
    pub fn wait_until_parked(&self) -> Result<()> {
        let path = format!("/proc/{}/syscall", self.info.pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = std::fs::read_to_string(&path).unwrap_or_default();
            // "0 0x<fd> ..." while blocked in read; "running" otherwise.
            if s.starts_with("0 ") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the command did not start (PID {} never reached exec)",
                    self.info.pid
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Lets the child exec; fails with one line if the exec failed.
    pub fn release(self) -> Result<()> {
        nix::unistd::write(&self.go, &[1]).context("cannot start the command")?;
        let mut buf = [0u8; 4];
        let n = loop {
            match nix::unistd::read(self.exec_err.as_fd(), &mut buf) {
                Err(Errno::EINTR) => continue,
                r => break r.context("cannot start the command")?,
            }
        };
        if n == 0 {
            return Ok(()); // closed by a successful exec
        }
        let _ = waitpid(Pid::from_raw(self.info.pid as i32), None);
        let errno = Errno::from_raw(i32::from_ne_bytes(buf));
        bail!(
            "cannot execute '{}': {}",
            self.program.display(),
            errno.desc()
        )
    }
}

/// Reaps our child if it has exited; `None` if it still runs.
pub fn try_reap(pid: u32) -> Option<CommandExit> {
    match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(CommandExit {
            pid,
            exit_code: Some(code),
            signal: None,
            signo: None,
        }),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(CommandExit {
            pid,
            exit_code: None,
            signal: Some(sig.as_str()),
            signo: Some(sig as i32),
        }),
        _ => None,
    }
}
