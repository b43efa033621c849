//! `congruent FIRST STRIDE COUNT CALLS` (root): threads whose ids are FIRST, FIRST + STRIDE,
//! ... (COUNT of them, set through /proc/sys/kernel/ns_last_pid), so that they share a
//! set of tracer's per-thread tables. One after another, each makes CALLS `getppid`s and
//! then blocks (in a futex wait) until all have; a thread starts only once the previous one
//! is blocked. Prints the thread ids.
use std::sync::{Arc, Barrier};

/// The state letter of a thread of this process, from /proc.
fn state(tid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    s.rsplit_once(") ")?.1.chars().next()
}

pub fn congruent(first: u64, stride: u64, count: u64, calls: u64, wait: bool) {
    crate::memory::wait_for_go(wait);
    let barrier = Arc::new(Barrier::new(count as usize + 1));
    let mut threads = Vec::new();
    let mut tids = Vec::new();
    for k in 0..count {
        let want = (first + k * stride) as i32;
        let mut started = None;
        for _ in 0..50 {
            std::fs::write("/proc/sys/kernel/ns_last_pid", (want - 1).to_string()).unwrap();
            let b = barrier.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            let t = std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() };
                let mine = tid == want;
                tx.send(tid).unwrap();
                if mine {
                    for _ in 0..calls {
                        // SAFETY: getppid has no preconditions.
                        unsafe { libc::syscall(libc::SYS_getppid) };
                    }
                    b.wait();
                }
            });
            let tid = rx.recv().unwrap();
            if tid == want {
                started = Some(t);
                break;
            }
            t.join().unwrap(); // another task took the id first: try again
        }
        let t = started.unwrap_or_else(|| panic!("could not start a thread as {want}"));
        // The next thread starts once this one is blocked at the barrier.
        while state(want) != Some('S') {
            std::thread::yield_now();
        }
        threads.push(t);
        tids.push(want);
    }
    barrier.wait();
    for t in threads {
        t.join().unwrap();
    }
    println!("tids {tids:?}");
}

/// `congruent-children FIRST STRIDE COUNT CALLS` (root): children whose ids are FIRST,
/// FIRST + STRIDE, ... (COUNT of them), one after another: each makes CALLS `getppid`s and
/// exits before the next is forked, so that they share a set of tracer's per-process table
/// one at a time. A child that did not get its id exits at once, making no call, and is
/// forked again; an id some other task holds is passed over for the next of the set. Prints
/// the ids.
pub fn congruent_children(first: u64, stride: u64, count: u64, calls: u64, wait: bool) {
    crate::memory::wait_for_go(wait);
    let mut pids = Vec::new();
    // First 0: the children's ids share this process's set, from one stride above its own.
    let first = if first == 0 {
        u64::from(std::process::id()) + stride
    } else {
        first
    };
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4_194_304);
    let mut candidates = (0..)
        .map(|k| first + k * stride)
        .take_while(|&p| p < pid_max);
    while (pids.len() as u64) < count {
        let Some(want) = candidates.next() else {
            panic!("no room below pid_max for {count} children {stride} apart");
        };
        let want = want as i32;
        // An id another program holds (a thread of a long-lived process that took it after
        // an earlier run's child) cannot be had: the next one of the same set will do.
        if std::path::Path::new(&format!("/proc/{want}")).exists() {
            continue;
        }
        for _ in 0..50 {
            std::fs::write("/proc/sys/kernel/ns_last_pid", (want - 1).to_string()).unwrap();
            // SAFETY: the child makes only raw syscalls and leaves with _exit.
            let child = unsafe { libc::fork() };
            if child == 0 {
                unsafe {
                    if libc::getpid() != want {
                        libc::_exit(3);
                    }
                    for _ in 0..calls {
                        libc::syscall(libc::SYS_getppid);
                    }
                    libc::_exit(0);
                }
            }
            assert!(child > 0, "fork failed");
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            if child == want {
                assert_eq!(status, 0);
                pids.push(want);
                break;
            }
        }
    }
    println!("pids {pids:?}");
}
