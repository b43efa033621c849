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

pub fn map_anon(len: usize) -> *mut u8 {
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

pub fn touch(p: *mut u8, len: usize) {
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

/// `fds N`: opens /dev/null N times and closes none; prints `opened A emfile B open C`
/// (C: its descriptors at the end, inherited ones included).
pub fn fds(n: u64, wait: bool) {
    let path = CString::new("/dev/null").unwrap();
    // Counted before tracing starts: listing /proc/self/fd opens a descriptor.
    let before = open_fds() as u64;
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
    println!("opened {opened} emfile {emfile} open {}", before + opened);
}

/// The first number >= `from` that starts `len` free descriptor numbers (inherited
/// descriptors can sit anywhere).
pub fn free_run(from: i32, len: i32) -> i32 {
    // SAFETY: F_GETFD only queries a descriptor number.
    let free = |fd: i32| unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1;
    let mut base = from;
    while !(base..base + len).all(free) {
        base += 1;
    }
    base
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1 // minus read_dir's own
}

/// `dups`: descriptor syscalls whose effect depends on the state: dup2 onto a closed
/// number (+1), onto an open one (0), onto itself (0), dup3 (+1), close (-1),
/// fcntl(F_DUPFD) (+1), pipe (+2); prints `delta D` (the /proc count after - before, 4).
pub fn dups(wait: bool) {
    let before = open_fds();
    let n = free_run(100, 2);
    wait_for_go(wait);
    // SAFETY: descriptor syscalls on numbers this process owns or that are free.
    let after = unsafe {
        assert_eq!(libc::dup2(0, n), n);
        assert_eq!(libc::dup2(1, n), n);
        assert_eq!(libc::dup2(0, 0), 0);
        assert_eq!(libc::dup3(0, n + 1, libc::O_CLOEXEC), n + 1);
        assert_eq!(libc::close(n), 0);
        assert!(libc::fcntl(0, libc::F_DUPFD, 200) >= 200);
        let mut p = [0; 2];
        assert_eq!(libc::pipe(p.as_mut_ptr()), 0);
        open_fds()
    };
    println!("delta {}", after as i64 - before as i64);
}

/// `passfds ROUNDS`: a unix socket pair passes descriptors to itself: ROUNDS `recvmsg`s of
/// 2 descriptors each, then one `recvmmsg` of 2 messages of 1 descriptor each (as node's
/// cluster passes sockets to its workers); none is closed. Prints `delta D` (the /proc
/// count after - before: 2 + 2 * ROUNDS + 2).
pub fn passfds(rounds: u64, wait: bool) {
    let before = open_fds();
    wait_for_go(wait);
    let mut sv = [0; 2];
    // SAFETY: socketpair fills the two-element array.
    assert_eq!(
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, sv.as_mut_ptr()) },
        0
    );
    let send = |fds: &[i32]| {
        let mut control = [0u64; 8];
        let mut byte = *b"x";
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // SAFETY: a zeroed msghdr pointing at live buffers; CMSG_* walk the control buffer,
        // which holds one header and the descriptors (at most 4: 32 bytes of payload).
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE((4 * fds.len()) as u32) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((4 * fds.len()) as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
            assert_eq!(libc::sendmsg(sv[0], &msg, 0), 1);
        }
    };
    // A receiving msghdr with room for one byte and 4 descriptors.
    // SAFETY: a zeroed msghdr is valid; the caller points it at its own buffers.
    let recv_hdr = |iov: &mut libc::iovec, control: &mut [u64; 8]| unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(control);
        msg
    };
    let mut byte = [0u8; 1];
    for _ in 0..rounds {
        send(&[0, 1]);
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = [0u64; 8];
        let mut msg = recv_hdr(&mut iov, &mut control);
        // SAFETY: a msghdr pointing at live buffers.
        assert_eq!(unsafe { libc::recvmsg(sv[1], &mut msg, 0) }, 1);
    }
    send(&[0]);
    send(&[1]);
    let (mut b0, mut b1) = ([0u8; 1], [0u8; 1]);
    let mut iovs = [
        libc::iovec {
            iov_base: b0.as_mut_ptr().cast(),
            iov_len: 1,
        },
        libc::iovec {
            iov_base: b1.as_mut_ptr().cast(),
            iov_len: 1,
        },
    ];
    let (mut c0, mut c1) = ([0u64; 8], [0u64; 8]);
    let [iov0, iov1] = &mut iovs;
    let mut msgs = [
        libc::mmsghdr {
            msg_hdr: recv_hdr(iov0, &mut c0),
            msg_len: 0,
        },
        libc::mmsghdr {
            msg_hdr: recv_hdr(iov1, &mut c1),
            msg_len: 0,
        },
    ];
    // SAFETY: two mmsghdrs pointing at live buffers.
    let got = unsafe {
        libc::recvmmsg(
            sv[1],
            msgs.as_mut_ptr(),
            2,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(got, 2);
    println!("delta {}", open_fds() as i64 - before as i64);
}

/// `fdexec`: in a run of 200 free descriptor numbers from B: makes 10 descriptors at
/// B..B+10 (opened, moved there with dup2, originals closed), closes B..=B+4 with one
/// `close_range`, makes 2 more (B+70, B+150) and closes them with a `close_range` over
/// B+65..=B+199, marks B+5..=B+9 close-on-exec with another, opens 3 more close-on-exec,
/// then execs itself as `fds 2` (which opens 2 and prints `opened 2 emfile 0 ...`). Net
/// effect: +2 descriptors.
pub fn fdexec(wait: bool) {
    let path = CString::new("/dev/null").unwrap();
    let exe = CString::new("/proc/self/exe").unwrap();
    let argv = [c"tracer-workload", c"fds", c"2"];
    let b = free_run(300, 200);
    wait_for_go(wait);
    // SAFETY: opens of a NUL-terminated path, dup2/close/close_range on descriptors made
    // here (the ranges hold nothing else: they are in the free run), and an exec with
    // NUL-terminated arguments.
    unsafe {
        for i in 0..10 {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
            assert_eq!(libc::dup2(fd, b + i), b + i);
            assert_eq!(libc::close(fd), 0);
        }
        let range = |lo: i32, hi: i32, flags: u32| {
            libc::syscall(libc::SYS_close_range, lo as u32, hi as u32, flags)
        };
        assert_eq!(range(b, b + 4, 0), 0);
        assert_eq!(libc::fcntl(b + 5, libc::F_DUPFD, b + 70), b + 70);
        assert_eq!(libc::fcntl(b + 5, libc::F_DUPFD, b + 150), b + 150);
        assert_eq!(range(b + 65, b + 199, 0), 0);
        if range(b + 5, b + 9, libc::CLOSE_RANGE_CLOEXEC) != 0 {
            // Linux before 5.11 has no CLOSE_RANGE_CLOEXEC: the failed call is counted (an
            // error, closing nothing), and the descriptors are marked one by one.
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EINVAL)
            );
            for fd in b + 5..=b + 9 {
                assert_eq!(libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC), 0);
            }
        }
        for _ in 0..3 {
            assert!(libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) >= 0);
        }
        let args = [
            argv[0].as_ptr(),
            argv[1].as_ptr(),
            argv[2].as_ptr(),
            std::ptr::null(),
        ];
        libc::execv(exe.as_ptr(), args.as_ptr());
    }
    panic!("exec failed: {}", std::io::Error::last_os_error());
}

/// `grow MIB MILLIS COUNT`: COUNT times, maps and writes MIB MiB, then sleeps MILLIS ms
/// (steady growth, for growth rates and limit ETAs).
/// With `--wait`, it then says `grown` and waits for another line before exiting (so that
/// a tracer can end while it still holds the memory).
pub fn grow(mib: u64, millis: u64, count: u64, wait: bool) {
    wait_for_go(wait);
    for _ in 0..count {
        touch(map_anon(mib as usize * MIB), mib as usize * MIB);
        std::thread::sleep(std::time::Duration::from_millis(millis));
    }
    if wait {
        let mut out = std::io::stdout().lock();
        writeln!(out, "grown").unwrap();
        out.flush().unwrap();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).unwrap();
    }
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
