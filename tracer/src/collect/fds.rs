//! `-y` / `--decode-fds`: what the traced processes' descriptors are, read from `/proc`
//! when their calls are decoded (`readlink /proc/TGID/fd/N`; with `-yy` a socket's
//! protocol from its `system.sockprotoname` attribute and its addresses from the process's
//! `/proc/TGID/net/*` tables, by inode). Everything read is kept for one batch of calls
//! only: the batch is decoded at one moment, so a flood reads each descriptor, and each
//! table, once per batch rather than once per call.
use std::{collections::HashMap, ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use crate::model::strace::fds::{self, FdNamer, InetRow, UnixRow};

#[derive(Default)]
pub struct FdNames {
    /// 1: `-y`, 2 and more: `-yy`.
    level: u8,
    names: HashMap<(u32, i32), Option<String>>,
    nets: HashMap<u32, Nets>,
}

/// A process's `/proc/TGID/net` tables, each read when first needed.
#[derive(Default)]
struct Nets {
    inet: HashMap<&'static str, Vec<InetRow>>,
    unix: Option<Vec<UnixRow>>,
}

impl FdNames {
    pub fn new(level: u8) -> Self {
        Self {
            level,
            ..Self::default()
        }
    }

    /// A new batch: what was read for the last one is forgotten.
    pub fn batch(&mut self) {
        self.names.clear();
        self.nets.clear();
    }

    fn read(&mut self, tgid: u32, fd: i32) -> Option<String> {
        let path = if fd == libc::AT_FDCWD {
            format!("/proc/{tgid}/cwd")
        } else {
            format!("/proc/{tgid}/fd/{fd}")
        };
        let link = std::fs::read_link(&path).ok()?;
        let link = link.as_os_str().as_bytes();
        if self.level >= 2
            && let Some(inode) = fds::socket_inode(link)
            && let Some(proto) = sock_proto(&path)
        {
            return Some(self.socket(tgid, &proto, inode));
        }
        Some(fds::link_text(link))
    }

    /// `-yy`'s text for a socket: its addresses when its table has them, else
    /// `PROTO:[INODE]` (a socket not bound yet).
    fn socket(&mut self, tgid: u32, proto: &str, inode: u64) -> String {
        let nets = self.nets.entry(tgid).or_default();
        let table = match proto {
            "TCP" => "tcp",
            "TCPv6" => "tcp6",
            "UDP" => "udp",
            "UDPv6" => "udp6",
            p if p.starts_with("UNIX") => {
                let proto = fds::link_text(proto.as_bytes());
                // The kernel's sock_diag knows the peer; a socket of another network
                // namespace is not found there, and its name comes from the process's
                // /proc/TGID/net/unix.
                if let Some((peer, name)) = unix_diag(inode) {
                    return fds::unix_text(&proto, inode, peer, name.as_deref());
                }
                let rows = nets
                    .unix
                    .get_or_insert_with(|| fds::parse_unix(&net_table(tgid, "unix")));
                let path = rows
                    .iter()
                    .find(|r| r.0 == inode)
                    .and_then(|r| r.1.as_deref());
                return fds::unix_text(&proto, inode, None, path);
            }
            _ => "",
        };
        let rows = if table.is_empty() {
            None
        } else {
            Some(
                nets.inet
                    .entry(table)
                    .or_insert_with(|| fds::parse_inet(&net_table(tgid, table))),
            )
        };
        let proto = fds::link_text(proto.as_bytes());
        match rows.and_then(|rows| rows.iter().find(|r| r.0 == inode)) {
            Some(&(_, local, remote)) => fds::inet_text(&proto, local, remote),
            None => format!("{proto}:[{inode}]"),
        }
    }
}

impl FdNamer for FdNames {
    fn name(&mut self, tgid: u32, fd: i32) -> Option<String> {
        if self.level == 0 || (fd < 0 && fd != libc::AT_FDCWD) {
            return None;
        }
        if let Some(n) = self.names.get(&(tgid, fd)) {
            return n.clone();
        }
        let n = self.read(tgid, fd);
        self.names.insert((tgid, fd), n.clone());
        n
    }
}

fn net_table(tgid: u32, name: &str) -> String {
    std::fs::read_to_string(format!("/proc/{tgid}/net/{name}")).unwrap_or_default()
}

/// A socket descriptor's protocol as the kernel names it (`TCP`, `UDPv6`, `UNIX-STREAM`):
/// the `system.sockprotoname` attribute of its `/proc` link, which is what strace reads.
fn sock_proto(path: &str) -> Option<String> {
    let c = CString::new(Path::new(path).as_os_str().as_bytes()).ok()?;
    let name = c"system.sockprotoname";
    let mut buf = [0u8; 64];
    // SAFETY: both strings are NUL-terminated and live; the buffer's length is given.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return None;
    }
    let v = &buf[..n as usize];
    let v = v.split(|&b| b == 0).next().unwrap_or(v);
    Some(String::from_utf8_lossy(v).into_owned())
}

/// A unix socket's peer and name from the kernel's sock_diag (netlink), as strace asks them.
fn unix_diag(inode: u64) -> Option<(Option<u64>, Option<Vec<u8>>)> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let inode = u32::try_from(inode).ok()?;
    // SAFETY: a plain socket(2); the descriptor is owned at once.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a new descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let req = fds::unix_diag_request(inode);
    // SAFETY: the buffer is live for its length; the kernel is the default destination.
    let sent = unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent != req.len() as isize {
        return None;
    }
    let mut buf = [0u8; 8192];
    // SAFETY: the buffer is live for its length.
    let n = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n <= 0 {
        return None;
    }
    fds::parse_unix_diag(&buf[..n as usize], inode)
}
