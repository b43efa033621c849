//! `tracer-workload files DIR [MILLIS]`: file calls with exactly known arguments and results, made
//! as raw syscalls (no C library wrapper in between), for the call stream's tests:
//! `mkdir DIR/d 0755`, `openat DIR/d/f O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC 0644` (then
//! closed), `rename DIR/d/f DIR/d/g`, `renameat2` of a missing `DIR/d/m` with
//! `RENAME_NOREPLACE` (ENOENT), `access DIR/d/g R_OK|W_OK`, `unlink DIR/d/g`,
//! `unlinkat DIR/d AT_REMOVEDIR`, an `openat` of `/nonexistent/` followed by an escape
//! sequence and a newline (ENOENT), and one of a 300-byte name under `/nonexistent/`
//! (ENOENT, /nonexistent being missing: cut in the stream at 256 bytes).
use std::ffi::CString;

pub fn run(dir: &str) {
    let p = |s: &str| CString::new(format!("{dir}/{s}")).unwrap();
    let (d, f, g, m, h) = (p("d"), p("d/f"), p("d/g"), p("d/m"), p("d/h"));
    let evil = CString::new("/nonexistent/\x1b[2J\n").unwrap();
    let long = CString::new(format!("/nonexistent/{}", "a".repeat(300))).unwrap();
    // SAFETY: every path is a live NUL-terminated string; the descriptor opened is closed.
    unsafe {
        libc::syscall(libc::SYS_mkdir, d.as_ptr(), 0o755);
        let fd = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        );
        libc::syscall(libc::SYS_close, fd);
        libc::syscall(libc::SYS_rename, f.as_ptr(), g.as_ptr());
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            m.as_ptr(),
            libc::AT_FDCWD,
            h.as_ptr(),
            libc::RENAME_NOREPLACE,
        );
        libc::syscall(libc::SYS_access, g.as_ptr(), libc::R_OK | libc::W_OK);
        libc::syscall(libc::SYS_unlink, g.as_ptr());
        libc::syscall(
            libc::SYS_unlinkat,
            libc::AT_FDCWD,
            d.as_ptr(),
            libc::AT_REMOVEDIR,
        );
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            evil.as_ptr(),
            libc::O_RDONLY,
        );
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            long.as_ptr(),
            libc::O_RDONLY,
        );
    }
}

/// `tracer-workload descriptors DIR`: descriptors of each kind, for `-y`, as raw syscalls:
/// `openat DIR/known O_RDONLY` (the caller wrote the file), `read` of 64 bytes from it; a
/// `pipe2`, a `write` of one byte into it and a `read` of it; a TCP listener on
/// 127.0.0.1 (`socket`, `bind` to port 0, `listen`, `getsockname`), a `socket` that
/// `connect`s to it, `accept` on the listener, a `write` of one byte on the connection
/// and a `read` of it on the accepted socket; a unix `socketpair`, a `write` of one byte
/// on the first and a `read` on the second. Then a 2 s pause, so that the calls are
/// decoded while every descriptor is open, a `close` of each in the order opened, and
/// their numbers on standard output (`descriptors: 3 4 5 ...`).
pub fn descriptors(dir: &str) {
    let known = CString::new(format!("{dir}/known")).unwrap();
    let mut buf = [0u8; 64];
    let mut fds = Vec::new();
    // SAFETY: every pointer is to a live local of the size given; each descriptor opened
    // is closed at the end.
    unsafe {
        let read = |fd: libc::c_long, buf: &mut [u8], n: usize| {
            libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), n);
        };
        let write = |fd: libc::c_long, b: &[u8]| {
            libc::syscall(libc::SYS_write, fd, b.as_ptr(), b.len());
        };
        let f = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            known.as_ptr(),
            libc::O_RDONLY,
        );
        fds.push(f);
        read(f, &mut buf, 64);
        let mut p = [0i32; 2];
        libc::syscall(libc::SYS_pipe2, p.as_mut_ptr(), 0);
        let (pr, pw) = (p[0] as libc::c_long, p[1] as libc::c_long);
        fds.extend([pr, pw]);
        write(pw, b"p");
        read(pr, &mut buf, 1);

        let l = libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0);
        fds.push(l);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        libc::syscall(libc::SYS_bind, l, &addr as *const libc::sockaddr_in, len);
        libc::syscall(libc::SYS_listen, l, 1);
        let mut got = len;
        libc::syscall(
            libc::SYS_getsockname,
            l,
            &mut addr as *mut libc::sockaddr_in,
            &mut got as *mut libc::socklen_t,
        );
        let c = libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0);
        fds.push(c);
        libc::syscall(libc::SYS_connect, c, &addr as *const libc::sockaddr_in, len);
        let a = libc::syscall(libc::SYS_accept, l, 0, 0);
        fds.push(a);
        write(c, b"t");
        read(a, &mut buf, 1);

        let mut sv = [0i32; 2];
        libc::syscall(
            libc::SYS_socketpair,
            libc::AF_UNIX,
            libc::SOCK_STREAM,
            0,
            sv.as_mut_ptr(),
        );
        let (u0, u1) = (sv[0] as libc::c_long, sv[1] as libc::c_long);
        fds.extend([u0, u1]);
        write(u0, b"u");
        read(u1, &mut buf, 1);

        // Long enough for a slow (emulated) guest's reader to decode them first.
        let pause = libc::timespec {
            tv_sec: 2,
            tv_nsec: 0,
        };
        libc::syscall(libc::SYS_nanosleep, &pause as *const libc::timespec, 0);
        for &fd in &fds {
            libc::syscall(libc::SYS_close, fd);
        }
    }
    // The numbers, for a test to know them whatever descriptors the workload inherited.
    let shown: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
    println!("descriptors: {}", shown.join(" "));
}
