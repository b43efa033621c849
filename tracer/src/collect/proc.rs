//! Reading /proc and the memory cgroup: the baseline and the periodic readings of the
//! memory section (RSS split, faults, limits, descriptor count), and finding a cgroup's
//! path from its id (for OOM kills).
use std::{
    collections::HashMap,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::fs::MetadataExt,
    },
    path::{Path, PathBuf},
    sync::Arc,
};

use procfs::process::{LimitValue, MMapPath, Process};

use crate::model::{
    memory::{CgroupMem, NO_LIMIT, ProcReading, Rss},
    procs::Joined,
};

/// O_CLOEXEC as /proc/PID/fdinfo prints it (octal flags).
const O_CLOEXEC: u64 = 0o2000000;

/// Where the memory controller's hierarchy is mounted.
#[derive(Clone, Debug, Default)]
pub struct CgroupRoots {
    /// cgroup v1 hierarchy with the memory controller.
    pub v1_memory: Option<PathBuf>,
    /// The cgroup v2 (unified) hierarchy.
    pub v2: Option<PathBuf>,
}

impl CgroupRoots {
    pub fn find() -> Self {
        let mut roots = CgroupRoots::default();
        let Ok(mounts) = Process::myself().and_then(|p| p.mountinfo()) else {
            return roots;
        };
        for m in mounts {
            match m.fs_type.as_str() {
                "cgroup" if m.super_options.contains_key("memory") => {
                    roots.v1_memory.get_or_insert(m.mount_point);
                }
                "cgroup2" => {
                    roots.v2.get_or_insert(m.mount_point);
                }
                _ => {}
            }
        }
        roots
    }
}

fn soft(l: &procfs::process::Limit) -> Option<u64> {
    match l.soft_limit {
        LimitValue::Value(v) => Some(v),
        LimitValue::Unlimited => None,
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The process's memory cgroup, with its limit and usage.
fn memory_cgroup(p: &Process, roots: &CgroupRoots) -> Option<CgroupMem> {
    let groups = p.cgroups().ok()?;
    let v1 = groups
        .0
        .iter()
        .find(|g| g.controllers.iter().any(|c| c == "memory"));
    if let (Some(g), Some(root)) = (v1, &roots.v1_memory) {
        let dir = root.join(g.pathname.trim_start_matches('/'));
        let limit = read_u64(&dir.join("memory.limit_in_bytes")).filter(|&l| l < NO_LIMIT);
        return Some(CgroupMem {
            path: g.pathname.clone(),
            limit_bytes: limit,
            usage_bytes: read_u64(&dir.join("memory.usage_in_bytes")).unwrap_or(0),
        });
    }
    let v2 = groups.0.iter().find(|g| g.hierarchy == 0)?;
    let dir = roots.v2.as_ref()?.join(v2.pathname.trim_start_matches('/'));
    // memory.max holds "max" when unlimited; missing when the controller is not enabled.
    let usage = read_u64(&dir.join("memory.current"))?;
    Some(CgroupMem {
        path: v2.pathname.clone(),
        limit_bytes: read_u64(&dir.join("memory.max")),
        usage_bytes: usage,
    })
}

/// A traced process, known by a pidfd: unlike its pid, which the kernel gives to another
/// process once it has been reaped, the pidfd always means this process.
#[derive(Clone, Debug)]
pub struct Live {
    pub pid: u32,
    pub slot: u32,
    /// How it came to be traced.
    pub joined: Joined,
    /// Its start (clock ticks since boot, /proc/PID/stat's): with the pid, who it is. 0 if
    /// it was gone when looked at.
    pub start_ticks: u64,
    pidfd: Arc<OwnedFd>,
}

impl Live {
    /// Process `pid`, known by `pidfd`, joined as `joined` under `slot`.
    pub fn new(pid: u32, slot: u32, pidfd: OwnedFd, joined: Joined) -> Self {
        Self {
            pid,
            slot,
            joined,
            start_ticks: start_and_parent(pid).map_or(0, |(t, _)| t),
            pidfd: Arc::new(pidfd),
        }
    }

    /// Whether the process is still there (running, or ended but not yet reaped, when its
    /// pid is still its own): what was read of /proc/PID before this says `true` was its.
    pub fn is_running(&self) -> bool {
        // SAFETY: signal 0 only checks that the process exists; the pidfd is open.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        // EPERM: it exists, and tracer (not root: CAP_BPF and CAP_PERFMON, as the
        // DaemonSet runs it) may not signal it. ESRCH: it has ended.
        sent == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }

    /// Another descriptor of the pidfd (it becomes readable when the process exits).
    pub fn watch_fd(&self) -> std::io::Result<OwnedFd> {
        self.pidfd.try_clone()
    }
}

/// The descendants of a process now (children, their children, ...), parents before their
/// children, from each thread's `/proc/PID/task/TID/children`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found: Vec<u32> = Vec::new();
    let mut queue = std::collections::VecDeque::from([pid]);
    while let Some(p) = queue.pop_front() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let path = task.path().join("children");
            let Ok(list) = std::fs::read_to_string(path) else {
                continue;
            };
            for child in list
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if child != pid && !found.contains(&child) {
                    found.push(child);
                    queue.push_back(child);
                }
            }
        }
    }
    found
}

/// When process `pid` started (clock ticks since boot) and its parent, from
/// /proc/PID/stat; None if it is gone.
pub fn start_and_parent(pid: u32) -> Option<(u64, u32)> {
    let s = Process::new(pid as i32).and_then(|p| p.stat()).ok()?;
    Some((s.starttime, s.ppid as u32))
}

/// Reads one process. None when it is gone entirely (reaped: its pid free, or another
/// process's). `full`: also the descriptor count (a directory listing: costly with many
/// descriptors, so not on every tick); otherwise `fds` is None. `baseline`: also the
/// heap's end.
pub fn read(
    who: &Live,
    t_s: f64,
    roots: &CgroupRoots,
    full: bool,
    baseline: bool,
) -> Option<ProcReading> {
    let pid = who.pid;
    let p = Process::new(pid as i32).ok()?;
    let stat = p.stat().ok()?;
    let status = p.status().ok()?;
    let kib = |v: Option<u64>| v.unwrap_or(0) * 1024;
    // A zombie has no mm: /proc/PID/status then has no Vm*/Rss* lines.
    let rss = status.vmrss.map(|_| Rss {
        anon_bytes: kib(status.rssanon),
        file_bytes: kib(status.rssfile),
        shmem_bytes: kib(status.rssshmem),
        swap_bytes: kib(status.vmswap),
    });
    let limits = p.limits().ok();
    let brk = if baseline && rss.is_some() {
        p.maps()
            .ok()
            .and_then(|m| {
                m.iter()
                    .find(|m| m.pathname == MMapPath::Heap)
                    .map(|m| m.address.1)
            })
            .or(stat.start_brk)
    } else {
        None
    };
    let reading = ProcReading {
        t_s,
        rss,
        vm_size: kib(status.vmsize),
        vm_data: kib(status.vmdata),
        minflt: stat.minflt,
        majflt: stat.majflt,
        fds: if full { fd_count(pid) } else { None },
        nofile_limit: limits.as_ref().and_then(|l| soft(&l.max_open_files)),
        as_limit: limits.as_ref().and_then(|l| soft(&l.max_address_space)),
        data_limit: limits.as_ref().and_then(|l| soft(&l.max_data_size)),
        cgroup: memory_cgroup(&p, roots),
        brk,
        start_brk: stat.start_brk,
    };
    // Read before this check, so it was the process's own, not a later process's that was
    // given its pid.
    who.is_running().then_some(reading)
}

/// Open descriptors of a process: the size of /proc/PID/fd from Linux 6.2, a listing
/// before. (procfs's `fd_count` counts the listing's `.` and `..` too: 2 more on those
/// kernels.)
pub fn fd_count(pid: u32) -> Option<u64> {
    let dir = format!("/proc/{pid}/fd");
    match std::fs::metadata(&dir).ok()?.len() {
        0 => Some(std::fs::read_dir(&dir).ok()?.count() as u64),
        n => Some(n),
    }
}

/// Descriptors marked close-on-exec (closed by the exec of a launched command).
pub fn cloexec_fds(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            let info = std::fs::read_to_string(e.path()).unwrap_or_default();
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u64::from_str_radix(f.trim(), 8).ok())
                .is_some_and(|flags| flags & O_CLOEXEC != 0)
        })
        .count() as u64
}

/// Finds memory cgroups by id (the kernfs id is the directory's inode number), caching
/// what it found.
#[derive(Debug, Default)]
pub struct CgroupNames {
    roots: CgroupRoots,
    cache: HashMap<u64, Option<String>>,
}

impl CgroupNames {
    pub fn new(roots: CgroupRoots) -> Self {
        Self {
            roots,
            cache: HashMap::new(),
        }
    }

    pub fn resolve(&mut self, id: u64) -> Option<String> {
        if let Some(v) = self.cache.get(&id) {
            return v.clone();
        }
        let found = [&self.roots.v1_memory, &self.roots.v2]
            .into_iter()
            .flatten()
            .find_map(|root| find_ino(root, root, id, 0));
        self.cache.insert(id, found.clone());
        found
    }
}

fn find_ino(root: &Path, dir: &Path, ino: u64, depth: u32) -> Option<String> {
    let meta = std::fs::metadata(dir).ok()?;
    if meta.ino() == ino {
        let rel = dir.strip_prefix(root).ok()?;
        return Some(format!("/{}", rel.display()));
    }
    if depth > 32 {
        return None;
    }
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| find_ino(root, &e.path(), ino, depth + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads this test process (no root needed).
    #[test]
    fn reads_a_live_process() {
        let pid = std::process::id();
        let me = Live::new(
            pid,
            0,
            crate::target::pidfd_open(pid).unwrap(),
            Joined::Attached,
        );
        let roots = CgroupRoots::find();
        let r = read(&me, 1.5, &roots, true, true).unwrap();
        assert_eq!(r.t_s, 1.5);
        let rss = r.rss.expect("a live process has memory");
        assert!(rss.total() > 0 && r.vm_size >= rss.total());
        assert!(r.fds.unwrap() >= 3);
        assert!(r.brk.is_some() && r.start_brk.is_some());
        // A light reading leaves out the descriptor count.
        assert!(read(&me, 0.0, &roots, false, false).unwrap().fds.is_none());
        // A process that has ended and been reaped: its pidfd says so, whoever has its pid
        // now (here: a pid that names this very process).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let ended = Live::new(
            pid,
            0,
            crate::target::pidfd_open(child.id()).unwrap(),
            Joined::Attached,
        );
        child.wait().unwrap();
        assert!(me.is_running() && !ended.is_running());
        assert!(read(&ended, 0.0, &roots, true, false).is_none());
    }

    /// Starts `sleep 30` with the given standard descriptors and waits (up to 5 s) until its
    /// exec is complete: its program is no longer this test's (it may be a link to
    /// busybox), and the spawn's close-on-exec pipe is closed (a moment later); then until
    /// it sleeps (in nanosleep or clock_nanosleep): before, its start-up (locale files)
    /// opens and closes descriptors.
    fn sleeper(null_stdio: bool) -> std::process::Child {
        use std::process::{Command, Stdio};
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        if null_stdio {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        let child = cmd.spawn().unwrap();
        let me = std::env::current_exe().unwrap();
        let path = format!("/proc/{}/exe", child.id());
        let start = std::time::Instant::now();
        let asleep = || {
            std::fs::read_to_string(format!("/proc/{}/syscall", child.id()))
                .is_ok_and(|s| matches!(s.split(' ').next(), Some("35" | "230")))
        };
        while (std::fs::read_link(&path).map_or(true, |p| p == me)
            || cloexec_fds(child.id()) > 0
            || !asleep())
            && start.elapsed() < std::time::Duration::from_secs(5)
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child
    }

    /// As many as /proc/PID/fdinfo lists, on every kernel (the listing of /proc/PID/fd
    /// before Linux 6.2 also holds `.` and `..`, once counted as descriptors).
    #[test]
    fn counts_exactly_the_open_descriptors() {
        let mut child = sleeper(true);
        let listed = std::fs::read_dir(format!("/proc/{}/fdinfo", child.id()))
            .unwrap()
            .count() as u64;
        assert!(listed >= 3);
        assert_eq!(fd_count(child.id()), Some(listed));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn counts_close_on_exec_descriptors() {
        // std opens files close-on-exec: this process holds at least these 20.
        let files: Vec<_> = (0..20)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        assert!(cloexec_fds(std::process::id()) >= files.len() as u64);
        // A spawned child has only its standard descriptors, inherited (not close-on-exec).
        let mut child = sleeper(false);
        assert_eq!(cloexec_fds(child.id()), 0);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn finds_a_cgroup_by_inode() {
        let roots = CgroupRoots::find();
        let Some(root) = roots.v1_memory.clone().or(roots.v2.clone()) else {
            crate::testing::skip("no memory cgroup hierarchy mounted");
            return;
        };
        let ino = std::fs::metadata(&root).unwrap().ino();
        let mut names = CgroupNames::new(roots);
        assert_eq!(names.resolve(ino).as_deref(), Some("/"));
        assert_eq!(names.cache.get(&ino), Some(&Some("/".to_string())));
        assert_eq!(names.resolve(u64::MAX), None);
    }
}
