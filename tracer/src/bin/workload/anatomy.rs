//! `anatomy`: a process whose parts are exactly known, for the anatomy tests (issue 15).
//! After `--wait`'s go: grows its heap by 4 MiB with `sbrk` and maps 8 MiB anonymous, each
//! page written; opens its own executable 3 times, 2 pipes, an eventfd, an epoll and a
//! timerfd; a TCP listener on 127.0.0.1 with a client connected to it and the accepted
//! end, a UDP socket bound on 127.0.0.1, and a unix socket pair. Prints `done TCP UDP`
//! (the two ports), then holds it all until stdin ends.
use std::{
    io::{BufRead, Write},
    net::{TcpListener, TcpStream, UdpSocket},
    os::unix::net::UnixStream,
};

use super::memory::{map_anon, touch, wait_for_go};

const MIB: usize = 1 << 20;

pub fn run(wait: bool) {
    wait_for_go(wait);
    // SAFETY: moves the program break up by 4 MiB; the pages are ours to write.
    let heap = unsafe { libc::sbrk(4 * MIB as libc::intptr_t) };
    assert_ne!(heap as isize, -1, "sbrk failed");
    touch(heap.cast(), 4 * MIB);
    let anon = map_anon(8 * MIB);
    touch(anon, 8 * MIB);
    let exe = std::env::current_exe().unwrap();
    let files: Vec<std::fs::File> = (0..3).map(|_| std::fs::File::open(&exe).unwrap()).collect();
    let mut pipes = [0i32; 4];
    // SAFETY: each call writes two descriptors into the array's halves.
    unsafe {
        assert_eq!(libc::pipe(pipes.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(pipes[2..].as_mut_ptr()), 0);
        assert!(libc::eventfd(0, 0) >= 0);
        assert!(libc::epoll_create1(0) >= 0);
        assert!(libc::timerfd_create(libc::CLOCK_MONOTONIC, 0) >= 0);
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let pair = UnixStream::pair().unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "done {tcp} {}", udp.local_addr().unwrap().port()).unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {}
    drop((files, listener, client, accepted, udp, pair));
}
