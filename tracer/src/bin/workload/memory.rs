//! Memory and descriptor workloads with exactly known effects (see `usage` in workload.rs).
use std::{
    ffi::CString,
    io::{BufRead, Write},
};

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

/// With `--wait`: says `ready` and waits for a line on stdin (tracer attaches meanwhile).
pub fn wait_for_go(wait: bool) {
    if wait {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).unwrap();
    }
}

/// `brk MIB`: grows the heap by MIB MiB with `sbrk`, 1 MiB at a time.
pub fn brk(mib: u64, wait: bool) {
    wait_for_go(wait);
    for _ in 0..mib {
        // SAFETY: moves the program break up; the memory is never used.
        let p = unsafe { libc::sbrk(MIB as libc::intptr_t) };
        assert_ne!(p as isize, -1, "sbrk failed");
    }
}

fn map_anon(len: usize) -> *mut u8 {
    // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap failed");
    p.cast()
}

fn touch(p: *mut u8, len: usize) {
    for off in (0..len).step_by(PAGE) {
        // SAFETY: within the mapping of `len` bytes starting at p.
        unsafe { p.add(off).write_volatile(1) };
    }
}

/// `mmap MIB`: maps MIB MiB anonymous, writes every page (one page fault each: no huge
/// pages), then unmaps it.
pub fn mmap(mib: u64, wait: bool) {
    wait_for_go(wait);
    let len = mib as usize * MIB;
    let p = map_anon(len);
    // SAFETY: advice on the mapping made above.
    unsafe { libc::madvise(p.cast(), len, libc::MADV_NOHUGEPAGE) };
    touch(p, len);
    // SAFETY: unmapping exactly the mapping made above.
    assert_eq!(unsafe { libc::munmap(p.cast(), len) }, 0);
}

/// `fds N`: opens /dev/null N times and closes none; prints `opened A emfile B`.
pub fn fds(n: u64, wait: bool) {
    let path = CString::new("/dev/null").unwrap();
    wait_for_go(wait);
    let (mut opened, mut emfile) = (0, 0);
    for _ in 0..n {
        // SAFETY: a NUL-terminated path; the descriptor is deliberately leaked.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
        if fd >= 0 {
            opened += 1;
        } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::EMFILE) {
            emfile += 1;
        }
    }
    println!("opened {opened} emfile {emfile}");
}

/// `oom`: maps and touches 1 MiB after 1 MiB until the OOM killer ends it (gives up with
/// exit code 3 after 4 GiB, if no limit stopped it).
pub fn oom(wait: bool) {
    wait_for_go(wait);
    for _ in 0..4096 {
        touch(map_anon(MIB), MIB);
    }
    std::process::exit(3);
}
