//! `-y` / `--decode-fds`: what the traced processes' descriptors are, read from `/proc`
//! when their calls are decoded (`readlink /proc/TGID/fd/N`; with `-yy` a socket's
//! protocol from its `system.sockprotoname` attribute, its addresses from the process's
//! `/proc/TGID/net/*` tables by inode, a unix socket's peer from sock_diag). What is read
//! is kept, with when it was read, for calls that ended before that: a flood's backlog
//! (calls that ended before the reading) reads each descriptor, and each table, once,
//! where a call that ends after a reading (the reader caught up) is read again. Kept for
//! one batch of calls at most. A process that began after the call ended (its pid reused
//! between the call and its decoding) is not the caller: its descriptors name nothing.
use std::{collections::HashMap, ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use crate::model::strace::fds::{self, FdNamer, InetRow, UnixRow};

#[derive(Default)]
pub struct FdNames {
    /// 1: `-y`, 2 and more: `-yy`.
    level: u8,
    /// (tgid, fd) -> (read at, CLOCK_MONOTONIC ns; what it was).
    names: HashMap<(u32, i32), (u64, Option<String>)>,
    /// (tgid, table) -> (read at; rows).
    inet: HashMap<(u32, &'static str), (u64, Vec<InetRow>)>,
    unix: HashMap<u32, (u64, Vec<UnixRow>)>,
    /// tgid -> when the process now holding that pid began, CLOCK_MONOTONIC ns (None: gone).
    began: HashMap<u32, Option<u64>>,
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
        self.inet.clear();
        self.unix.clear();
        self.began.clear();
    }

    /// Whether the process now at `tgid` is the one whose call ended at `end_ns`: it began
    /// before (within a clock tick: /proc's start time counts ticks).
    fn same_process(&mut self, tgid: u32, end_ns: u64) -> bool {
        let began = *self.began.entry(tgid).or_insert_with(|| {
            let (ticks, _) = super::proc::start_and_parent(tgid)?;
            Some(boot_ticks_to_monotonic_ns(ticks))
        });
        began.is_some_and(|b| b <= end_ns.saturating_add(tick_ns()))
    }

    fn read(&mut self, tgid: u32, fd: i32, after_ns: u64) -> Option<String> {
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
            return Some(self.socket(tgid, &proto, inode, after_ns));
        }
        Some(fds::link_text(link))
    }

    /// `-yy`'s text for a socket: its addresses when its table has them, else
    /// `PROTO:[INODE]` (a socket not bound yet).
    fn socket(&mut self, tgid: u32, proto: &str, inode: u64, after_ns: u64) -> String {
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
                let rows = fresh(&mut self.unix, tgid, after_ns, || {
                    fds::parse_unix(&net_table(tgid, "unix"))
                });
                let path = rows
                    .iter()
                    .find(|r| r.0 == inode)
                    .and_then(|r| r.1.as_deref());
                return fds::unix_text(&proto, inode, None, path);
            }
            _ => "",
        };
        let proto = fds::link_text(proto.as_bytes());
        if !table.is_empty() {
            let rows = fresh(&mut self.inet, (tgid, table), after_ns, || {
                fds::parse_inet(&net_table(tgid, table))
            });
            if let Some(&(_, local, remote)) = rows.iter().find(|r| r.0 == inode) {
                return fds::inet_text(&proto, local, remote);
            }
        }
        format!("{proto}:[{inode}]")
    }
}

/// The entry of `key`, read again by `read` unless it was read after `after_ns` (the
/// clock is taken before reading: a reading begun after a call ended reflects it).
fn fresh<K: std::hash::Hash + Eq, V>(
    cache: &mut HashMap<K, (u64, V)>,
    key: K,
    after_ns: u64,
    read: impl FnOnce() -> V,
) -> &V {
    use std::collections::hash_map::Entry;
    let slot = match cache.entry(key) {
        Entry::Occupied(o) => {
            let slot = o.into_mut();
            if slot.0 <= after_ns {
                slot.0 = crate::run::monotonic_ns();
                slot.1 = read();
            }
            slot
        }
        Entry::Vacant(v) => {
            let at = crate::run::monotonic_ns();
            v.insert((at, read()))
        }
    };
    &slot.1
}

impl FdNamer for FdNames {
    fn name(&mut self, tgid: u32, fd: i32, after_ns: u64) -> Option<String> {
        if self.level == 0 || (fd < 0 && fd != libc::AT_FDCWD) {
            return None;
        }
        if let Some((at, n)) = self.names.get(&(tgid, fd))
            && *at > after_ns
        {
            return n.clone();
        }
        if !self.same_process(tgid, after_ns) {
            return None;
        }
        let at = crate::run::monotonic_ns();
        let n = self.read(tgid, fd, after_ns);
        self.names.insert((tgid, fd), (at, n.clone()));
        n
    }
}

/// One clock tick (of /proc's start times), ns.
fn tick_ns() -> u64 {
    1_000_000_000 / procfs::ticks_per_second().max(1)
}

/// A start time in clock ticks since boot (CLOCK_BOOTTIME) on CLOCK_MONOTONIC, the calls'
/// clock (they differ by the time the machine was suspended).
fn boot_ticks_to_monotonic_ns(ticks: u64) -> u64 {
    let ns = |id| {
        nix::time::clock_gettime(id).map_or(0, |t| {
            t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
        })
    };
    let suspended = ns(nix::time::ClockId::CLOCK_BOOTTIME)
        .saturating_sub(ns(nix::time::ClockId::CLOCK_MONOTONIC));
    ticks.saturating_mul(tick_ns()).saturating_sub(suspended)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_began_after_the_call_is_not_its_caller() {
        let me = std::process::id();
        let now = crate::run::monotonic_ns();
        let mut n = FdNames::new(1);
        assert!(n.same_process(me, now));
        // A call that ended before this process began (a second after boot) was another's.
        n.batch();
        assert!(!n.same_process(me, 1_000_000_000));
        assert_eq!(n.name(me, 0, 1_000_000_000), None);
        n.batch();
        assert!(n.name(me, 0, now).is_some());
        // A pid nothing holds.
        n.batch();
        assert!(!n.same_process(u32::MAX - 1, now));
    }
}
