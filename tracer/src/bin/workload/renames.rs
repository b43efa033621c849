//! `renames NAME N M K`: says `ready` and waits for a line on stdin; then names its main
//! thread NAME (prctl PR_SET_NAME), makes N `getppid`s, names itself `tracer-away`, makes
//! M `getppid`s, says `away` and waits for a second line; then names itself NAME again by
//! a write to /proc/self/comm (the kernel lets only a process's own threads write it),
//! makes K `getppid`s and leaves with `_exit`. After the first line only raw syscalls, so
//! the calls made under each name are exactly known.
use std::ffi::CString;

fn getppids(n: u64) {
    for _ in 0..n {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
}

fn set_name(name: &str) {
    let name = CString::new(name).unwrap();
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (at most 16 bytes are used).
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) }, 0);
}

pub fn renames(name: &str, n: u64, m: u64, k: u64) {
    super::memory::wait_for_go(true);
    set_name(name);
    getppids(n);
    set_name("tracer-away");
    getppids(m);
    let comm = CString::new("/proc/self/comm").unwrap();
    let mut b = [0u8; 64];
    // SAFETY: a NUL-terminated path; a write from and a read into live buffers. The
    // descriptor is opened while away and never closed, so that the only call made under
    // the name again before the getppids is the write that gives it.
    unsafe {
        let fd = libc::open(comm.as_ptr(), libc::O_WRONLY);
        assert!(fd >= 0);
        libc::write(1, b"away\n".as_ptr().cast(), 5);
        libc::read(0, b.as_mut_ptr().cast(), b.len());
        libc::write(fd, name.as_ptr().cast(), name.len());
    }
    getppids(k);
    // SAFETY: ends the process at once (no exit handlers, which could make calls).
    unsafe { libc::_exit(0) }
}
