//! Workloads with exactly known syscalls, for tracer's integration tests and benchmarks.
//!
//! `tracer-workload [--wait] syscalls GETPPID WRITES MISSING_OPENS`: makes exactly that many
//! `getppid`s, `write`s of one byte to /dev/null, and `openat`s of a path that does not
//! exist (each failing with ENOENT). With `--wait`, it first prints `ready` and waits for a
//! line on stdin, so that a tracer can attach by PID before the counted work begins.
//!
//! `tracer-workload [--wait] linger SECS GETPPID WRITES MISSING_OPENS`: the same calls as
//! `syscalls`, then one sleep of SECS seconds (a process that stays, with known counts).
//!
//! `tracer-workload paced COUNT MILLIS`: COUNT times, one `getppid` then a sleep of MILLIS
//! milliseconds (a slow, steady workload spread over several report intervals).
//!
//! `tracer-workload steady HZ SECS SLEEP_MS`: for SECS seconds, one `getppid` every 1/HZ s
//! on absolute deadlines (so the rate is HZ, without drift), while a second thread makes
//! `nanosleep`s of SLEEP_MS ms back to back (calls of a known latency); says `done`.
//!
//! `tracer-workload churn ROUNDS MIB`: ROUNDS times, `mmap` MIB MiB anonymous, write one
//! byte per 4 KiB page, and `munmap` it (page faults and RSS changes, few syscalls).
//!
//! `tracer-workload sleeps COUNT MILLIS`: COUNT `clock_nanosleep`s of MILLIS ms.
//!
//! `tracer-workload mixed COUNT EVERY KIB`: COUNT `read`s from /dev/zero, every EVERY-th
//! of KIB KiB (slow: the kernel zeroes the buffer), the others of one byte (fast).
//!
//! `tracer-workload bursts ROUNDS CALLS MILLIS`: ROUNDS times, CALLS `getppid`s then one
//! `clock_nanosleep` of MILLIS ms (a busy thread that also blocks).
//!
//! `tracer-workload surge BASE_HZ BASE_MS SURGE_HZ SURGE_MS FAILS TAIL_MS`: `getppid` at
//! BASE_HZ for BASE_MS ms, at SURGE_HZ for SURGE_MS ms, FAILS `open`s of / for writing
//! (EISDIR: an errno no program start makes), then BASE_HZ for TAIL_MS ms (a steady rate,
//! a surge, a new errno).
//!
//! `tracer-workload families GETPPID SLEEPS FAILS CHILDREN`: something for every metric
//! family (tests/metrics.rs): sets RLIMIT_DATA to 64 GiB (a memory limit in force; its
//! hard limit if lower), makes GETPPID `getppid`s, SLEEPS `clock_nanosleep`s of 3 ms, then
//! FAILS `openat`s of / for writing (EISDIR, after the sleeps: not in a tracer's first
//! interval, so a new errno); forks CHILDREN children one after another, each making 10
//! `getppid`s, and one more that aborts (SIGABRT, no core file); and runs an event loop of
//! 20 iterations, the 10th a 150 ms stall, in a thread of its own (`loop 20 2 10 150`, see
//! `workload/loops.rs`).
//!
//! `tracer-workload rare COUNT EVERY`: COUNT `getppid`s, and one `getuid` after every
//! EVERY-th (a busy thread's rare syscall).
//!
//! `tracer-workload pool THREADS HZ SECS`: THREADS threads that live SECS seconds, each
//! making HZ `getppid`s a second (a service's thread pool, for the live view's cost).
//!
//! `tracer-workload spin THREADS SECS`: pins itself to CPU 0 and runs THREADS busy threads
//! for SECS seconds (they take turns: preemption and run-queue waits).
//!
//! `tracer-workload household CHILDREN CALLS`: see `household.rs`.
//!
//! `tracer-workload renames NAME N M K`: renames itself to NAME and away; see `renames.rs`.
//!
//! `tracer-workload [--wait] forks CHILDREN CALLS`: forks CHILDREN children one after
//! another, each making exactly CALLS `getppid`s and exiting 0; the parent waits for each
//! (and with `--wait`, says `child PID` once it has).
//!
//! `tracer-workload [--wait] family CHILDREN CALLS`: forks CHILDREN children, which wait
//! (in a pipe read) until the parent has passed `--wait`'s handshake, then each make exactly
//! CALLS `getppid`s and exit; the parent reaps them.
//!
//! `tracer-workload stranger`: 20000 `getppid`s, 200 sleeps of 1 ms, 64 MiB written, 50
//! descriptors opened; says `done` and holds it all until a line on stdin (a process given
//! a traced process's pid, in the identity tests).
//!
//! `tracer-workload threads COUNT CALLS [NAP_MS]`: starts COUNT threads one after another,
//! each making exactly CALLS `getppid`s (then sleeping NAP_MS ms, below 1000, once) and
//! ending; the main thread joins each before the next.
//!
//! `tracer-workload exits`: forks a child that exits with code 3, one that is killed by
//! SIGKILL (sent by the parent) and one that writes through a null pointer (SIGSEGV, from
//! the kernel), and reaps them.
//!
//! `tracer-workload [--wait] int80 GETPPID`: 32-bit syscalls through `int 0x80` with
//! known effects (`workload/compat.rs`): GETPPID `getppid`s, descriptors (+7), mappings.
//!
//! `tracer-workload [--wait] congruent FIRST STRIDE COUNT CALLS` (root): COUNT threads with
//! ids FIRST + k * STRIDE, one after another, each making CALLS `getppid`s then blocking
//! until all have (`workload/congruent.rs`).
//!
//! `tracer-workload [--wait] evilname`: names itself, then (after `--wait`'s handshake) a
//! thread, `ESC[2J ESC[H fake NL ok` (clear the screen, home the cursor, forge a line).
//!
//! Memory and descriptors (`workload/memory.rs`), each after `--wait`'s handshake if given:
//! `brk MIB` grows the heap by MIB MiB with `sbrk` in 1 MiB steps; `mmap MIB` maps MIB MiB
//! anonymous, writes every page and unmaps it; `fds N` opens /dev/null N times, closes
//! none, and prints `opened A emfile B open C`; `oom` allocates 1 MiB after 1 MiB until killed;
//! `grow MIB MILLIS COUNT` maps and writes MIB MiB every MILLIS ms, COUNT times; `dups`
//! makes dup2/dup3/fcntl/close/pipe calls whose net effect is +4 descriptors; `fdexec`
//! closes descriptors with close_range and an exec of itself (net effect +2); `passfds
//! ROUNDS` receives descriptors over a unix socket pair with recvmsg and recvmmsg.
//!
//! `tracer-workload [--wait] anatomy`: a process whose memory regions, descriptors and
//! sockets are exactly known (see workload/anatomy.rs); says `done TCP_PORT UDP_PORT`.
//!
//! `tracer-workload blocking FSYNC_PATH`: blocked time of known causes, phase by phase
//! (sleeps, a pipe read, a contended mutex, an fsync; see workload/blocking.rs).
//!
//! `tracer-workload loop ITERATIONS BUSY_MS STALL_AT STALL_MS`: an event loop on `poll`
//! with one stalled iteration (see workload/loops.rs); `compute ROUNDS`, a thread that
//! computes without a syscall.
//!
//! `tracer-workload net DIR`: socket calls with known addresses (a refused connect on
//! loopback among them) and execs with a known argv (see workload/net.rs).
//!
//! `tracer-workload [--wait] crash null|readonly|bus|abort`: a thread crashes the process
//! in a known way at a known address (see workload/crash.rs).
//!
//! `tracer-workload [--wait] zombies EARLY LATE MILLIS` and `tracer-workload orphan`:
//! zombie children and an orphan with known numbers and times (see workload/kin.rs).
//!
//! `tracer-workload stack COUNT`: calls from functions with known frames, for `--stack`
//! (see workload/stack.rs).
use std::{ffi::CString, fs::OpenOptions, os::fd::AsRawFd};

#[path = "workload/anatomy.rs"]
mod anatomy;
#[path = "workload/blocking.rs"]
mod blocking;
#[path = "workload/compat.rs"]
mod compat;
#[path = "workload/congruent.rs"]
mod congruent;
#[path = "workload/crash.rs"]
mod crash;
#[path = "workload/files.rs"]
mod files;
#[path = "workload/household.rs"]
mod household;
#[path = "workload/kin.rs"]
mod kin;
#[path = "workload/loops.rs"]
mod loops;
#[path = "workload/memory.rs"]
mod memory;
#[path = "workload/net.rs"]
mod net;
#[path = "workload/renames.rs"]
mod renames;
#[path = "workload/stack.rs"]
mod stack;

fn usage() -> ! {
    eprintln!(
        "usage: tracer-workload [--wait] syscalls GETPPID WRITES MISSING_OPENS | paced COUNT MILLIS | mixed COUNT EVERY KIB | steady HZ SECS SLEEP_MS | bursts ROUNDS CALLS MILLIS | surge BASE_HZ BASE_MS SURGE_HZ SURGE_MS FAILS TAIL_MS | families GETPPID SLEEPS FAILS CHILDREN | rare COUNT EVERY | spin THREADS SECS | forks CHILDREN CALLS | family CHILDREN CALLS | stranger | threads COUNT CALLS [NAP_MS] | exits | churn ROUNDS MIB | brk MIB | mmap MIB | fds N | oom | grow MIB MILLIS COUNT | dups | fdexec | passfds ROUNDS | evilname | int80 GETPPID | congruent FIRST STRIDE COUNT CALLS | household CHILDREN CALLS | renames NAME N M K | rename | anatomy | blocking FSYNC_PATH | loop ITERATIONS BUSY_MS STALL_AT STALL_MS | compute ROUNDS | crash null|readonly|bus|abort | zombies EARLY LATE MILLIS | orphan | stack COUNT | files DIR | descriptors DIR"
    );
    std::process::exit(2)
}

fn num(s: Option<String>) -> u64 {
    s.and_then(|s| s.parse().ok()).unwrap_or_else(|| usage())
}

/// One `clock_nanosleep` of `millis` ms (below one second).
fn sleep_ms(millis: u64) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: (millis * 1_000_000) as i64,
    };
    // SAFETY: a valid timespec; no remainder wanted.
    unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &ts, std::ptr::null_mut()) };
}

fn wait_for(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waiting for our own child, with a valid status pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Forks a child that makes `calls` getppid and exits, and waits for it; its pid.
fn fork_getppid(calls: u64) -> libc::pid_t {
    // SAFETY: the child makes only raw syscalls and leaves with _exit.
    match unsafe { libc::fork() } {
        0 => unsafe {
            for _ in 0..calls {
                libc::syscall(libc::SYS_getppid);
            }
            libc::_exit(0)
        },
        -1 => panic!("fork failed"),
        child => {
            wait_for(child);
            child
        }
    }
}

/// See `steady` in the module's documentation.
fn steady(hz: u64, secs: u64, sleep_ms: u64) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sleeper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let ts = libc::timespec {
                tv_sec: (sleep_ms / 1000) as i64,
                tv_nsec: ((sleep_ms % 1000) * 1_000_000) as i64,
            };
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: a valid timespec; no remainder wanted. The syscall itself: glibc's
                // nanosleep() calls clock_nanosleep.
                unsafe { libc::syscall(libc::SYS_nanosleep, &ts as *const libc::timespec, 0usize) };
            }
        })
    };
    paced_getppid(hz, secs * 1000);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sleeper.join().unwrap();
    println!("done");
}

/// getppid at `hz`, paced by absolute deadlines, for `ms` milliseconds.
fn paced_getppid(hz: u64, ms: u64) {
    let step = 1_000_000_000 / hz.max(1);
    let mut next = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut next) };
    for _ in 0..hz * ms / 1000 {
        let ns = next.tv_nsec as u64 + step;
        next.tv_sec += (ns / 1_000_000_000) as i64;
        next.tv_nsec = (ns % 1_000_000_000) as i64;
        // SAFETY: a valid timespec; an absolute deadline leaves no remainder.
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &next,
                std::ptr::null_mut(),
            );
            libc::syscall(libc::SYS_getppid);
        }
    }
}

/// Starts `count` threads one after another, each making `calls` getppid.
fn thread_getppid(count: u64, calls: u64, nap_ms: u64) {
    for _ in 0..count {
        std::thread::spawn(move || {
            for _ in 0..calls {
                // SAFETY: getppid has no preconditions.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
            if nap_ms > 0 {
                sleep_ms(nap_ms);
            }
        })
        .join()
        .unwrap();
    }
}

/// See `families` in the module's documentation.
fn families(getppid: u64, sleeps: u64, fails: u64, children: u64) {
    let mut data = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid rlimits; the hard limit stays as it is.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_DATA, &mut data), 0);
        data.rlim_cur = data.rlim_max.min(64 << 30);
        assert_eq!(libc::setrlimit(libc::RLIMIT_DATA, &data), 0);
    }
    for _ in 0..getppid {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    for _ in 0..sleeps {
        sleep_ms(3);
    }
    for _ in 0..fails {
        // SAFETY: a NUL-terminated path; the call fails with EISDIR.
        unsafe { libc::openat(libc::AT_FDCWD, c"/".as_ptr(), libc::O_WRONLY) };
    }
    for _ in 0..children {
        fork_getppid(10);
    }
    // SAFETY: the child makes only async-signal-safe calls: no core file (RLIMIT_CORE 1
    // is "none", see `workload/crash.rs`), SIGABRT's default action, abort.
    match unsafe { libc::fork() } {
        0 => unsafe {
            let one = libc::rlimit {
                rlim_cur: 1,
                rlim_max: 1,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &one);
            libc::signal(libc::SIGABRT, libc::SIG_DFL);
            libc::abort()
        },
        -1 => panic!("fork failed"),
        child => wait_for(child),
    }
    std::thread::spawn(|| loops::run(20, 2, 10, 150))
        .join()
        .unwrap();
}

/// `syscalls`' counted calls: GETPPID `getppid`s, WRITES one-byte `write`s to /dev/null,
/// OPENS `openat`s failing with ENOENT.
fn counted_syscalls(getppid: u64, writes: u64, opens: u64, wait: bool) {
    let devnull = OpenOptions::new().write(true).open("/dev/null").unwrap();
    let missing = CString::new("/nonexistent/tracer-workload").unwrap();
    memory::wait_for_go(wait);
    for _ in 0..getppid {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    for _ in 0..writes {
        // SAFETY: writes one byte from a live buffer to an open descriptor.
        unsafe { libc::write(devnull.as_raw_fd(), b"x".as_ptr().cast(), 1) };
    }
    for _ in 0..opens {
        // SAFETY: a NUL-terminated path; the call fails with ENOENT.
        unsafe { libc::openat(libc::AT_FDCWD, missing.as_ptr(), libc::O_RDONLY) };
    }
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let wait = args.peek().map(String::as_str) == Some("--wait");
    if wait {
        args.next();
    }
    match args.next().as_deref() {
        Some("int80") => compat::int80(num(args.next()), wait),
        Some("congruent") => {
            let (first, stride) = (num(args.next()), num(args.next()));
            let (count, calls) = (num(args.next()), num(args.next()));
            congruent::congruent(first, stride, count, calls, wait);
        }
        Some("congruent-children") => {
            let (first, stride) = (num(args.next()), num(args.next()));
            let (count, calls) = (num(args.next()), num(args.next()));
            congruent::congruent_children(first, stride, count, calls, wait);
        }
        Some("syscalls") => {
            let (getppid, writes, opens) = (num(args.next()), num(args.next()), num(args.next()));
            counted_syscalls(getppid, writes, opens, wait);
        }
        // `bad-closes N`: N `close(-1)`s in a burst, each failing with EBADF (a failing
        // call without a path argument).
        Some("bad-closes") => {
            for _ in 0..num(args.next()) {
                // SAFETY: closing an invalid descriptor only fails.
                unsafe { libc::syscall(libc::SYS_close, -1) };
            }
        }
        Some("families") => {
            let [getppid, sleeps, fails, children] = std::array::from_fn(|_| num(args.next()));
            families(getppid, sleeps, fails, children);
        }
        Some("linger") => {
            let secs = num(args.next());
            let (getppid, writes, opens) = (num(args.next()), num(args.next()), num(args.next()));
            counted_syscalls(getppid, writes, opens, wait);
            std::thread::sleep(std::time::Duration::from_secs(secs));
        }
        Some("paced") => {
            let (count, millis) = (num(args.next()), num(args.next()));
            for _ in 0..count {
                // SAFETY: as above.
                unsafe { libc::syscall(libc::SYS_getppid) };
                std::thread::sleep(std::time::Duration::from_millis(millis));
            }
        }
        Some("churn") => {
            let (rounds, mib) = (num(args.next()), num(args.next()));
            let len = (mib as usize) << 20;
            for _ in 0..rounds {
                let bytes = memory::map_anon(len);
                // SAFETY: writes stay within the fresh mapping, which is then unmapped.
                unsafe {
                    for off in (0..len).step_by(4096) {
                        bytes.add(off).write_volatile(1);
                    }
                    libc::munmap(bytes.cast(), len);
                }
            }
        }
        Some("sleeps") => {
            let (count, millis) = (num(args.next()), num(args.next()));
            for _ in 0..count {
                sleep_ms(millis);
            }
        }
        Some("mixed") => {
            let (count, every, kib) = (num(args.next()), num(args.next()), num(args.next()));
            let zero = OpenOptions::new().read(true).open("/dev/zero").unwrap();
            let mut buf = vec![1u8; (kib as usize) << 10];
            for i in 0..count {
                let len = if every > 0 && i % every == every - 1 {
                    buf.len()
                } else {
                    1
                };
                // SAFETY: reads at most `buf.len()` bytes into the live buffer.
                unsafe { libc::read(zero.as_raw_fd(), buf.as_mut_ptr().cast(), len) };
            }
        }
        Some("steady") => {
            let (hz, secs, sleep) = (num(args.next()), num(args.next()), num(args.next()));
            steady(hz, secs, sleep);
        }
        Some("surge") => {
            // getppid at BASE_HZ for BASE_MS, at SURGE_HZ for SURGE_MS, then FAILS opens of
            // / for writing (EISDIR), then BASE_HZ for TAIL_MS again.
            let [base, base_ms, surge, surge_ms, fails, tail_ms] =
                std::array::from_fn(|_| num(args.next()));
            paced_getppid(base, base_ms);
            paced_getppid(surge, surge_ms);
            for _ in 0..fails {
                // SAFETY: a NUL-terminated path; the call fails with EISDIR.
                unsafe { libc::open(c"/".as_ptr(), libc::O_WRONLY) };
            }
            paced_getppid(base, tail_ms);
        }
        Some("bursts") => {
            let (rounds, calls, millis) = (num(args.next()), num(args.next()), num(args.next()));
            for _ in 0..rounds {
                for _ in 0..calls {
                    // SAFETY: as above.
                    unsafe { libc::syscall(libc::SYS_getppid) };
                }
                sleep_ms(millis);
            }
        }
        Some("rare") => {
            // A busy thread's rare syscall: COUNT getppid, and a getuid every EVERY-th call.
            let (count, every) = (num(args.next()), num(args.next()));
            for i in 1..=count {
                // SAFETY: getppid and getuid take no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
                if i % every == 0 {
                    // SAFETY: as above.
                    unsafe { libc::syscall(libc::SYS_getuid) };
                }
            }
        }
        Some("pool") => {
            // THREADS threads for SECS seconds, each making HZ getppid a second.
            let (threads, hz, secs) = (num(args.next()), num(args.next()), num(args.next()));
            let start = std::time::Instant::now();
            let period = std::time::Duration::from_secs(1) / hz.max(1) as u32;
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    std::thread::spawn(move || {
                        let mut next = start;
                        while next.elapsed() < std::time::Duration::from_secs(secs) {
                            // SAFETY: getppid takes no arguments and cannot fail.
                            unsafe { libc::syscall(libc::SYS_getppid) };
                            next += period;
                            std::thread::sleep(
                                next.saturating_duration_since(std::time::Instant::now()),
                            );
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
        }
        Some("spin") => {
            let (threads, secs) = (num(args.next()), num(args.next()));
            // SAFETY: a zeroed cpu_set_t with CPU 0 set, for this whole process.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut set);
                assert_eq!(
                    libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set),
                    0
                );
            }
            let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    std::thread::spawn(move || {
                        let mut x = 0u64;
                        while std::time::Instant::now() < until {
                            for i in 0..10_000u64 {
                                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                            }
                        }
                        x
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
        }
        Some("forks") => {
            let (children, calls) = (num(args.next()), num(args.next()));
            memory::wait_for_go(wait);
            for _ in 0..children {
                let child = fork_getppid(calls);
                if wait {
                    println!("child {child}");
                }
            }
        }
        Some("household") => {
            let (children, calls) = (num(args.next()), num(args.next()));
            household::household(children, calls);
        }
        Some("renames") => {
            let name = args.next().unwrap_or_else(|| usage());
            let (n, m, k) = (num(args.next()), num(args.next()), num(args.next()));
            renames::renames(&name, n, m, k);
        }
        Some("family") => {
            let (children, calls) = (num(args.next()), num(args.next()));
            // Forked before the handshake: they exist when a tracer attaches.
            let mut go = [0; 2];
            // SAFETY: pipe fills the two-element array.
            assert_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
            let mut pids = Vec::new();
            for _ in 0..children {
                // SAFETY: the child makes only raw syscalls and leaves with _exit.
                match unsafe { libc::fork() } {
                    0 => unsafe {
                        let mut b = 0u8;
                        libc::read(go[0], (&raw mut b).cast(), 1);
                        for _ in 0..calls {
                            libc::syscall(libc::SYS_getppid);
                        }
                        libc::_exit(0)
                    },
                    -1 => panic!("fork failed"),
                    child => pids.push(child),
                }
            }
            memory::wait_for_go(wait);
            // SAFETY: writes from a live buffer to the pipe's open end.
            unsafe { libc::write(go[1], vec![1u8; pids.len()].as_ptr().cast(), pids.len()) };
            for child in pids {
                wait_for(child);
            }
        }
        Some("stranger") => {
            // What a process given a traced process's pid must never have counted as the
            // traced one's: many getppid, 200 sleeps, 64 MiB written, 50 descriptors.
            for _ in 0..20_000 {
                // SAFETY: getppid has no preconditions.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
            for _ in 0..200 {
                sleep_ms(1);
            }
            memory::touch(memory::map_anon(64 << 20), 64 << 20);
            let files: Vec<_> = (0..50)
                .map(|_| std::fs::File::open("/dev/null").unwrap())
                .collect();
            println!("done");
            let mut line = String::new();
            // Holds it all until told to end (tracer reads /proc meanwhile).
            std::io::stdin().read_line(&mut line).unwrap();
            drop(files);
        }
        Some("soak") => {
            // The benchmark's soak: while DIR/busy exists, rounds of CHILDREN children and
            // THREADS threads making CALLS getppid each ("round" after each); otherwise a
            // sleep of 0.2 s (no fork: the target is idle); until DIR/stop exists.
            let dir = std::path::PathBuf::from(args.next().expect("soak DIR"));
            let (children, threads, calls) = (num(args.next()), num(args.next()), num(args.next()));
            while !dir.join("stop").exists() {
                if !dir.join("busy").exists() {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    continue;
                }
                for _ in 0..children {
                    fork_getppid(calls);
                }
                thread_getppid(threads, calls, 0);
                println!("round");
            }
        }
        Some("threads") => {
            let (count, calls) = (num(args.next()), num(args.next()));
            let nap = args.next().map_or(0, |s| num(Some(s)));
            thread_getppid(count, calls, nap);
        }
        Some("evilname") => {
            // Names that try to take over a terminal: the process's own name, then a
            // thread's, each set before that task blocks.
            let evil = c"\x1b[2J\x1b[Hfake\nok";
            // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
            unsafe { libc::prctl(libc::PR_SET_NAME, evil.as_ptr()) };
            memory::wait_for_go(wait);
            std::thread::spawn(move || {
                // SAFETY: as above.
                unsafe { libc::prctl(libc::PR_SET_NAME, evil.as_ptr()) };
                sleep_ms(20);
            })
            .join()
            .unwrap();
        }
        Some("rename") => {
            // A thread named at its start, switched out under that name, then renamed.
            std::thread::Builder::new()
                .name("named-early".into())
                .spawn(|| {
                    sleep_ms(20);
                    let name = CString::new("renamed-late").unwrap();
                    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
                    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
                    sleep_ms(20);
                })
                .unwrap()
                .join()
                .unwrap();
        }
        Some("exits") => {
            // SAFETY: each child makes only raw syscalls and leaves with _exit or a signal (the
            // third faults on purpose).
            unsafe {
                let three = libc::fork();
                if three == 0 {
                    libc::_exit(3);
                }
                let killed = libc::fork();
                if killed == 0 {
                    loop {
                        libc::pause();
                    }
                }
                wait_for(three);
                libc::kill(killed, libc::SIGKILL);
                wait_for(killed);
                let faults = libc::fork();
                if faults == 0 {
                    // No core file for the fault below.
                    let none = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    libc::setrlimit(libc::RLIMIT_CORE, &none);
                    // A write through a null pointer: SIGSEGV, generated by the kernel.
                    core::ptr::write_volatile(std::hint::black_box(core::ptr::null_mut::<u8>()), 1);
                    libc::_exit(0);
                }
                wait_for(faults);
            }
        }
        Some("files") => {
            files::run(&args.next().unwrap_or_else(|| usage()));
            // `files DIR MILLIS`: then a pause, so that the calls are decoded while the
            // process lives (its stacks: tests/stack.rs).
            if let Some(ms) = args.next() {
                std::thread::sleep(std::time::Duration::from_millis(num(Some(ms))));
            }
        }
        Some("descriptors") => files::descriptors(&args.next().unwrap_or_else(|| usage())),
        Some("net") => net::run(&args.next().unwrap_or_else(|| usage())),
        Some("brk") => memory::brk(num(args.next()), wait),
        Some("mmap") => memory::mmap(num(args.next()), wait),
        Some("fds") => memory::fds(num(args.next()), wait),
        Some("anatomy") => anatomy::run(wait),
        Some("blocking") => blocking::run(&args.next().unwrap_or_else(|| usage())),
        Some("compute") => loops::compute(num(args.next())),
        Some("loop") => loops::run(
            num(args.next()),
            num(args.next()),
            num(args.next()),
            num(args.next()),
        ),
        Some("zombies") => kin::zombies(num(args.next()), num(args.next()), num(args.next()), wait),
        Some("orphan") => kin::orphan(),
        Some("stack") => stack::run(num(args.next())),
        Some("crash") => crash::run(&args.next().unwrap_or_else(|| usage()), wait),
        Some("oom") => memory::oom(wait),
        Some("dups") => memory::dups(wait),
        Some("fdexec") => memory::fdexec(wait),
        Some("passfds") => memory::passfds(num(args.next()), wait),
        Some("grow") => memory::grow(num(args.next()), num(args.next()), num(args.next()), wait),
        _ => usage(),
    }
}
