//! `crash KIND`: a thread named `crasher` crashes the process in a known way, at a known
//! address, for the crash tests (issue 15). Before it does, it says `crash TID ADDR FN`:
//! its thread id, the address the fault is at (0 for `abort`) and the address of the
//! function that faults (its instruction pointer lies just after it), in hex. Kinds:
//! - `null`: a write to address 0x10 (SIGSEGV, SEGV_MAPERR);
//! - `readonly`: a write into a read-only private mapping, 0x40 bytes into it (SIGSEGV,
//!   SEGV_ACCERR);
//! - `bus`: a read of the second page of a shared mapping of a file truncated to one page,
//!   8 bytes into that page (SIGBUS, BUS_ADRERR);
//! - `abort`: abort() (SIGABRT, SI_TKILL).
//!
//! The signals' default action is restored first (std handles SIGSEGV and SIGBUS), so the
//! fault happens once, fatally. No core file is written: RLIMIT_CORE is 1, which the kernel takes as "no core" for a
//! file pattern and for a pipe alike.
use std::io::Write;

const PAGE: usize = 4096;

/// The faulting write, its own function so that its address is known.
#[inline(never)]
fn write_at(addr: usize) {
    // SAFETY: not safe at all: this write faults on purpose (the process dies of it).
    unsafe { core::ptr::write_volatile(std::hint::black_box(addr as *mut u8), 1) };
}

/// The faulting read.
#[inline(never)]
fn read_at(addr: usize) -> u8 {
    // SAFETY: as in `write_at`.
    unsafe { core::ptr::read_volatile(std::hint::black_box(addr as *const u8)) }
}

fn map(len: usize, prot: i32, flags: i32, fd: i32) -> usize {
    // SAFETY: a fresh mapping; no existing memory is affected.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
    assert_ne!(p, libc::MAP_FAILED, "mmap failed");
    p as usize
}

fn say(addr: usize, f: usize) {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let mut out = std::io::stdout().lock();
    writeln!(out, "crash {tid} {addr:#x} {f:#x}").unwrap();
    out.flush().unwrap();
}

pub fn run(kind: &str, wait: bool) {
    let one = libc::rlimit {
        rlim_cur: 1,
        rlim_max: 1,
    };
    // SAFETY: a valid rlimit; the default action for the signals below (std's handler of
    // SIGSEGV and SIGBUS, for stack overflows, would let the fault happen twice: once
    // handled, then fatal).
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &one);
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
    if !["null", "readonly", "bus", "abort"].contains(&kind) {
        eprintln!("usage: tracer-workload crash null|readonly|bus|abort");
        std::process::exit(2);
    }
    // Made before the handshake: only the crash comes after it.
    let target = match kind {
        "readonly" => {
            let p = map(
                PAGE,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
            );
            p + 0x40
        }
        "bus" => {
            let path = std::env::temp_dir().join(format!("tracer-bus-{}", std::process::id()));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            std::fs::remove_file(&path).unwrap();
            file.set_len(2 * PAGE as u64).unwrap();
            use std::os::fd::AsRawFd;
            let p = map(
                2 * PAGE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
            );
            file.set_len(PAGE as u64).unwrap();
            std::mem::forget(file);
            p + PAGE + 8
        }
        "null" => 0x10,
        _ => 0,
    };
    super::memory::wait_for_go(wait);
    let kind = kind.to_string();
    std::thread::Builder::new()
        .name("crasher".into())
        .spawn(move || match kind.as_str() {
            "abort" => {
                say(0, libc::abort as *const () as usize);
                std::process::abort();
            }
            "bus" => {
                say(target, read_at as *const () as usize);
                std::hint::black_box(read_at(target));
            }
            _ => {
                say(target, write_at as *const () as usize);
                write_at(target);
            }
        })
        .unwrap()
        .join()
        .unwrap();
    unreachable!("the crash did not happen");
}
