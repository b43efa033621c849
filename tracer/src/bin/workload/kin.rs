//! Zombie children and orphans with known numbers and times, for the anatomy tests.
//!
//! `zombies EARLY LATE MILLIS`: forks EARLY children that exit at once and are not reaped,
//! then (after `--wait`'s handshake) LATE more; says `zombies T0 T1` (CLOCK_MONOTONIC ns
//! before the first late fork and once all late children are zombies), keeps them all
//! unreaped MILLIS ms, reaps them, says `reaped T2`, and lingers 1 s.
//!
//! `orphan`: forks a child and says `child PID`, then waits for a line on stdin and exits;
//! the child, left to init or a subreaper, lives on until 1.5 s after its parent changed.
use std::io::{BufRead, Write};

fn mono_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// A child that exits at once, left a zombie: waited for with WNOWAIT, which does not reap.
fn zombie() -> libc::pid_t {
    // SAFETY: the child only exits.
    let pid = unsafe { libc::fork() };
    match pid {
        0 => unsafe { libc::_exit(0) },
        -1 => panic!("fork failed"),
        _ => {}
    }
    // SAFETY: a zeroed siginfo to fill; waits for our own child without reaping it.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        );
        assert_eq!(r, 0, "waitid failed");
    }
    pid
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

pub fn zombies(early: u64, late: u64, millis: u64, wait: bool) {
    let mut kids: Vec<libc::pid_t> = (0..early).map(|_| zombie()).collect();
    super::memory::wait_for_go(wait);
    let t0 = mono_ns();
    kids.extend((0..late).map(|_| zombie()));
    let t1 = mono_ns();
    say(&format!("zombies {t0} {t1}"));
    std::thread::sleep(std::time::Duration::from_millis(millis));
    for pid in kids {
        super::wait_for(pid);
    }
    say(&format!("reaped {}", mono_ns()));
    std::thread::sleep(std::time::Duration::from_secs(1));
}

pub fn orphan() {
    // SAFETY: getppid has no preconditions; the child makes only plain calls and _exits.
    let parent = unsafe { libc::getpid() };
    match unsafe { libc::fork() } {
        0 => {
            while unsafe { libc::getppid() } == parent {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            std::thread::sleep(std::time::Duration::from_millis(1500));
            unsafe { libc::_exit(0) }
        }
        -1 => panic!("fork failed"),
        child => {
            say(&format!("child {child}"));
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).unwrap();
        }
    }
}
