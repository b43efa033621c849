//! `household CHILDREN CALLS`: a parent whose CHILDREN children exist before a tracer
//! attaches, each different: child i (1-based) holds i MiB of touched anonymous memory and
//! i more descriptors (opened before the handshake), and once told to go makes exactly
//! i × CALLS `getppid`s and one `write` (saying it is done), then waits, holding it all,
//! until the parent ends it. The parent prints `ready` once every child is set up and
//! waiting, takes a line on stdin as the go, prints `done` when every child is done (with
//! the children's pids), and ends them at a second line on stdin.
use std::io::{BufRead, Write};

use super::memory;

fn pipe() -> [libc::c_int; 2] {
    let mut p = [0; 2];
    // SAFETY: pipe fills the two-element array.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    p
}

/// Reads `n` bytes from a pipe (one per child), however they arrive.
fn read_bytes(fd: libc::c_int, n: usize) {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        // SAFETY: reads into the live buffer's unread part.
        let r = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), n - got) };
        assert!(r > 0, "pipe closed early");
        got += r as usize;
    }
}

pub fn household(children: u64, calls: u64) {
    let (up, go, done, end) = (pipe(), pipe(), pipe(), pipe());
    let mut pids = Vec::new();
    for i in 1..=children {
        // SAFETY: the child makes only raw syscalls and leaves with _exit; the memory and
        // descriptors it sets up before the handshake are not counted.
        match unsafe { libc::fork() } {
            0 => unsafe {
                let len = (i << 20) as usize;
                memory::touch(memory::map_anon(len), len);
                let null = c"/dev/null";
                for _ in 0..i {
                    libc::open(null.as_ptr(), libc::O_RDONLY);
                }
                let b = 1u8;
                libc::write(up[1], (&raw const b).cast(), 1);
                let mut x = 0u8;
                libc::read(go[0], (&raw mut x).cast(), 1);
                for _ in 0..i * calls {
                    libc::syscall(libc::SYS_getppid);
                }
                libc::write(done[1], (&raw const b).cast(), 1);
                libc::read(end[0], (&raw mut x).cast(), 1);
                libc::_exit(0)
            },
            -1 => panic!("fork failed"),
            child => pids.push(child),
        }
    }
    read_bytes(up[0], pids.len());
    // Each child wrote its byte just before blocking in read: give it time to get there,
    // so that no call of its is in flight when a tracer attaches.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut line = String::new();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    // SAFETY: writes from a live buffer to the pipe's open end.
    unsafe { libc::write(go[1], vec![1u8; pids.len()].as_ptr().cast(), pids.len()) };
    read_bytes(done[0], pids.len());
    let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    writeln!(out, "done {}", list.join(" ")).unwrap();
    out.flush().unwrap();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    // SAFETY: writes from a live buffer to the pipe's open end.
    unsafe { libc::write(end[1], vec![1u8; pids.len()].as_ptr().cast(), pids.len()) };
    for child in pids {
        super::wait_for(child);
    }
}
