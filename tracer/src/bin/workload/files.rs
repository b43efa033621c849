//! `tracer-workload files DIR`: file calls with exactly known arguments and results, made
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
