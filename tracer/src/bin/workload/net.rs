//! `tracer-workload net DIR`: socket calls with exactly known arguments and results, and
//! execs with a known argv, as raw syscalls, for the call stream's tests. In order:
//! - a TCP listener on 127.0.0.1: `socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0)`, `bind`
//!   to port 0, `listen`, `getsockname` (its port, P);
//! - a client: `socket`, `connect` to P (succeeds), `accept4(.., SOCK_CLOEXEC)` on the
//!   listener (the client's port, C), `getpeername` of the client (P);
//! - a refused connect: a socket bound to a port of its own (`getsockname`: R) that never
//!   listens, and a `connect` to R from another socket: ECONNREFUSED on loopback;
//! - UDP over IPv6: `socket(AF_INET6, SOCK_DGRAM, 0)`, `bind` to [::1]:0, `getsockname`
//!   (U), `sendto` itself one byte, `recvfrom` it (from [::1]:U);
//! - unix: a `connect` to `DIR/missing.sock` (ENOENT), and a `bind` to the abstract name
//!   `tracer-net-test`;
//! - `execve` of `DIR/missing` with 10 arguments, one with a tab, one of 40 bytes
//!   (ENOENT), then a successful `execve` of /proc/self/exe as `tracer-workload
//!   bad-closes 0` (it makes no call and ends).
use std::{ffi::CString, mem::size_of};

/// A syscall's result (raw).
fn sys(n: libc::c_long, a: &[libc::c_long]) -> libc::c_long {
    let g = |i: usize| a.get(i).copied().unwrap_or(0);
    // SAFETY: every caller passes pointers to live locals of the sizes it gives.
    unsafe { libc::syscall(n, g(0), g(1), g(2), g(3), g(4), g(5)) }
}

fn inet(port: u16) -> libc::sockaddr_in {
    // SAFETY: a plain C struct, all zeroes valid.
    let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    a.sin_family = libc::AF_INET as libc::sa_family_t;
    a.sin_port = port.to_be();
    a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
    a
}

fn ptr<T>(v: &T) -> libc::c_long {
    v as *const T as libc::c_long
}

/// `getsockname(fd)` with room for `len` bytes (16 for IPv4, 28 for IPv6: its line shows
/// `[len]`): the port (at the same offset in both).
fn port_of(fd: libc::c_long, len: usize) -> u16 {
    // SAFETY: a plain C struct, all zeroes valid.
    let a: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let len = len as libc::socklen_t;
    sys(libc::SYS_getsockname, &[fd, ptr(&a), ptr(&len)]);
    u16::from_be(a.sin6_port)
}

/// A unix address: its bytes and the length a call passes (`sun_path`'s NUL included for
/// a path; every byte of an abstract name, after its leading NUL).
fn unix(path: &[u8]) -> (libc::sockaddr_un, libc::c_long) {
    // SAFETY: a plain C struct, all zeroes valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &b) in a.sun_path.iter_mut().zip(path) {
        *d = b as libc::c_char;
    }
    let nul = usize::from(path.first() != Some(&0));
    (a, (2 + path.len() + nul) as libc::c_long)
}

pub fn run(dir: &str) {
    use libc::{AF_INET, AF_INET6, AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_STREAM};
    let v4 = size_of::<libc::sockaddr_in>() as libc::c_long;
    let v6 = size_of::<libc::sockaddr_in6>() as libc::c_long;
    let socket = |domain: i32, kind: i32| sys(libc::SYS_socket, &[domain as _, kind as _, 0]);

    let l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
    sys(libc::SYS_bind, &[l, ptr(&inet(0)), v4]);
    sys(libc::SYS_listen, &[l, 1]);
    let p = port_of(l, v4 as usize);
    let c = socket(AF_INET, SOCK_STREAM);
    sys(libc::SYS_connect, &[c, ptr(&inet(p)), v4]);
    let peer = inet(0);
    let peer_len = v4 as libc::socklen_t;
    sys(
        libc::SYS_accept4,
        &[l, ptr(&peer), ptr(&peer_len), SOCK_CLOEXEC as _],
    );
    let got = inet(0);
    let got_len = v4 as libc::socklen_t;
    sys(libc::SYS_getpeername, &[c, ptr(&got), ptr(&got_len)]);

    let r = socket(AF_INET, SOCK_STREAM);
    sys(libc::SYS_bind, &[r, ptr(&inet(0)), v4]);
    let refused = port_of(r, v4 as usize);
    let c2 = socket(AF_INET, SOCK_STREAM);
    sys(libc::SYS_connect, &[c2, ptr(&inet(refused)), v4]);

    let u = socket(AF_INET6, SOCK_DGRAM);
    // SAFETY: a plain C struct, all zeroes valid.
    let mut six: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    six.sin6_family = AF_INET6 as libc::sa_family_t;
    six.sin6_addr.s6_addr[15] = 1;
    sys(libc::SYS_bind, &[u, ptr(&six), v6]);
    six.sin6_port = port_of(u, v6 as usize).to_be();
    sys(libc::SYS_sendto, &[u, ptr(b"x"), 1, 0, ptr(&six), v6]);
    let mut buf = [0u8; 8];
    let from = six;
    let from_len = v6 as libc::socklen_t;
    sys(
        libc::SYS_recvfrom,
        &[
            u,
            buf.as_mut_ptr() as libc::c_long,
            buf.len() as _,
            libc::MSG_DONTWAIT as _,
            ptr(&from),
            ptr(&from_len),
        ],
    );

    let s = socket(AF_UNIX, SOCK_STREAM);
    let (missing, len) = unix(format!("{dir}/missing.sock").as_bytes());
    sys(libc::SYS_connect, &[s, ptr(&missing), len]);
    let d = socket(AF_UNIX, SOCK_DGRAM);
    let (abs, len) = unix(b"\0tracer-net-test");
    sys(libc::SYS_bind, &[d, ptr(&abs), len]);

    let cs = |s: &str| CString::new(s).unwrap();
    let args: Vec<CString> = [
        "missing",
        "a\tb",
        &"a".repeat(40),
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "10",
    ]
    .iter()
    .map(|a| cs(a))
    .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let env: [*const libc::c_char; 1] = [std::ptr::null()];
    let path = cs(&format!("{dir}/missing"));
    sys(
        libc::SYS_execve,
        &[path.as_ptr() as _, argv.as_ptr() as _, env.as_ptr() as _],
    );
    let again = [cs("tracer-workload"), cs("bad-closes"), cs("0")];
    let mut argv: Vec<*const libc::c_char> = again.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let exe = cs("/proc/self/exe");
    sys(
        libc::SYS_execve,
        &[exe.as_ptr() as _, argv.as_ptr() as _, env.as_ptr() as _],
    );
    eprintln!("net: the exec of /proc/self/exe failed");
    std::process::exit(1);
}
