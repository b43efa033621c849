//! What each syscall's arguments are, for decoding them: a signature per syscall for those
//! decoded so far (the file families, memory, descriptors, signals); every other syscall
//! shows strace's count of its arguments, raw. The path arguments of a signature are what
//! the kernel side captures as strings (`StreamConfig::paths`).
use tracer_common::stream::{ARG_IS_ARGV, LEN_IS_PTR};

use super::decode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A descriptor.
    Fd,
    /// A directory descriptor (`AT_FDCWD`).
    DirFd,
    /// A path, captured in the kernel.
    Path,
    /// `execve`'s argv, its first entries captured in the kernel at entry.
    Argv,
    /// A socket address, captured in the kernel at exit; its length is the next argument,
    /// `UInt` or `AddrLenPtr`.
    Addr,
    /// A `socklen_t *` the kernel writes (`accept`, `recvfrom`, `getsockname`): shown as
    /// its value at exit, `[16]`.
    AddrLenPtr,
    /// `socket`'s domain (`AF_INET`), type (`SOCK_STREAM|SOCK_CLOEXEC`) and protocol
    /// (by the domain: `IPPROTO_TCP`, `NETLINK_ROUTE`).
    Family,
    SockType,
    Protocol,
    /// `accept4`'s flags (`SOCK_CLOEXEC|SOCK_NONBLOCK`).
    SockFlags,
    /// `send*`/`recv*` flags (`MSG_DONTWAIT`).
    MsgFlags,
    /// `clone`'s flags (`CLONE_VM|CLONE_FS|...|SIGCHLD`).
    CloneFlags,
    /// `open`'s flags.
    OpenFlags,
    /// `pipe2`'s and `dup3`'s flags (`0` or `O_CLOEXEC`...).
    FdFlags,
    /// A mode, shown only when the `OpenFlags` before it create a file.
    CreateMode,
    Mode,
    AccessMode,
    AtFlags,
    RenameFlags,
    Prot,
    MapFlags,
    Signal,
    /// A pointer: `NULL` or hex.
    Ptr,
    /// A number strace prints in hex.
    Hex,
    /// Signed and unsigned numbers.
    Int,
    UInt,
}

use Arg::*;

/// (syscall, arguments, whether it returns an address).
type Sig = (&'static str, &'static [Arg], bool);

const SIGNATURES: &[Sig] = &[
    ("read", &[Fd, Ptr, UInt], false),
    ("write", &[Fd, Ptr, UInt], false),
    ("pread64", &[Fd, Ptr, UInt, Int], false),
    ("pwrite64", &[Fd, Ptr, UInt, Int], false),
    ("open", &[Path, OpenFlags, CreateMode], false),
    ("openat", &[DirFd, Path, OpenFlags, CreateMode], false),
    ("openat2", &[DirFd, Path, Ptr, UInt], false),
    ("creat", &[Path, Mode], false),
    ("close", &[Fd], false),
    ("stat", &[Path, Ptr], false),
    ("lstat", &[Path, Ptr], false),
    ("fstat", &[Fd, Ptr], false),
    ("newfstatat", &[DirFd, Path, Ptr, AtFlags], false),
    ("statx", &[DirFd, Path, AtFlags, Hex, Ptr], false),
    ("statfs", &[Path, Ptr], false),
    ("access", &[Path, AccessMode], false),
    ("faccessat", &[DirFd, Path, AccessMode], false),
    ("faccessat2", &[DirFd, Path, AccessMode, AtFlags], false),
    ("execve", &[Path, Argv, Ptr], false),
    ("execveat", &[DirFd, Path, Argv, Ptr, AtFlags], false),
    ("unlink", &[Path], false),
    ("unlinkat", &[DirFd, Path, AtFlags], false),
    ("rename", &[Path, Path], false),
    ("renameat", &[DirFd, Path, DirFd, Path], false),
    ("renameat2", &[DirFd, Path, DirFd, Path, RenameFlags], false),
    ("mkdir", &[Path, Mode], false),
    ("mkdirat", &[DirFd, Path, Mode], false),
    ("rmdir", &[Path], false),
    ("readlink", &[Path, Ptr, UInt], false),
    ("readlinkat", &[DirFd, Path, Ptr, UInt], false),
    ("chdir", &[Path], false),
    ("fchdir", &[Fd], false),
    ("chroot", &[Path], false),
    ("chmod", &[Path, Mode], false),
    ("fchmod", &[Fd, Mode], false),
    ("fchmodat", &[DirFd, Path, Mode], false),
    ("chown", &[Path, Int, Int], false),
    ("lchown", &[Path, Int, Int], false),
    ("fchownat", &[DirFd, Path, Int, Int, AtFlags], false),
    ("truncate", &[Path, Int], false),
    ("link", &[Path, Path], false),
    ("linkat", &[DirFd, Path, DirFd, Path, AtFlags], false),
    ("symlink", &[Path, Path], false),
    ("symlinkat", &[Path, DirFd, Path], false),
    ("mknod", &[Path, Mode, Hex], false),
    ("mknodat", &[DirFd, Path, Mode, Hex], false),
    ("utimensat", &[DirFd, Path, Ptr, AtFlags], false),
    ("mmap", &[Ptr, UInt, Prot, MapFlags, Fd, Hex], true),
    ("mprotect", &[Ptr, UInt, Prot], false),
    ("munmap", &[Ptr, UInt], false),
    ("brk", &[Ptr], true),
    ("dup", &[Fd], false),
    ("dup2", &[Fd, Fd], false),
    ("dup3", &[Fd, Fd, FdFlags], false),
    ("pipe2", &[Ptr, FdFlags], false),
    ("lseek", &[Fd, Int, Int], false),
    ("getcwd", &[Ptr, UInt], false),
    ("readv", &[Fd, Ptr, UInt], false),
    ("writev", &[Fd, Ptr, UInt], false),
    ("fsync", &[Fd], false),
    ("fdatasync", &[Fd], false),
    ("ftruncate", &[Fd, Int], false),
    ("fstatfs", &[Fd, Ptr], false),
    ("fchown", &[Fd, Int, Int], false),
    ("flock", &[Fd, Int], false),
    ("getdents64", &[Fd, Ptr, UInt], false),
    ("sendfile", &[Fd, Fd, Ptr, UInt], false),
    ("socket", &[Family, SockType, Protocol], false),
    ("socketpair", &[Family, SockType, Protocol, Ptr], false),
    ("connect", &[Fd, Addr, UInt], false),
    ("bind", &[Fd, Addr, UInt], false),
    ("listen", &[Fd, Int], false),
    ("accept", &[Fd, Addr, AddrLenPtr], false),
    ("accept4", &[Fd, Addr, AddrLenPtr, SockFlags], false),
    ("sendto", &[Fd, Ptr, UInt, MsgFlags, Addr, UInt], false),
    (
        "recvfrom",
        &[Fd, Ptr, UInt, MsgFlags, Addr, AddrLenPtr],
        false,
    ),
    ("sendmsg", &[Fd, Ptr, MsgFlags], false),
    ("recvmsg", &[Fd, Ptr, MsgFlags], false),
    ("shutdown", &[Fd, Int], false),
    ("getsockname", &[Fd, Addr, AddrLenPtr], false),
    ("getpeername", &[Fd, Addr, AddrLenPtr], false),
    ("setsockopt", &[Fd, Int, Int, Ptr, UInt], false),
    ("getsockopt", &[Fd, Int, Int, Ptr, Ptr], false),
    ("epoll_ctl", &[Fd, Int, Fd, Ptr], false),
    ("epoll_wait", &[Fd, Ptr, Int, Int], false),
    ("clone", &[CloneFlags, Ptr, Ptr, Ptr, Hex], false),
    ("kill", &[Int, Signal], false),
    ("tkill", &[Int, Signal], false),
    ("tgkill", &[Int, Int, Signal], false),
];

/// The calls whose result is a new descriptor (strace's `RVAL_FD`): `-y` names it.
const RETURN_FDS: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "open_by_handle_at",
    "dup",
    "dup2",
    "dup3",
    "socket",
    "accept",
    "accept4",
    "epoll_create",
    "epoll_create1",
    "eventfd",
    "eventfd2",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "memfd_create",
    "memfd_secret",
    "inotify_init",
    "inotify_init1",
    "fanotify_init",
    "pidfd_open",
    "pidfd_getfd",
    "perf_event_open",
    "userfaultfd",
    "mq_open",
    "open_tree",
    "fsopen",
    "fsmount",
    "fspick",
];

/// Whether `name` returns a new descriptor.
pub fn returns_fd(name: &str) -> bool {
    RETURN_FDS.contains(&name)
}

/// The signature of `name`, if it is decoded.
pub fn signature(name: &str) -> Option<(&'static [Arg], bool)> {
    SIGNATURES
        .iter()
        .find(|s| s.0 == name)
        .map(|&(_, args, addr)| (args, addr))
}

/// Which arguments of `name` the kernel captures at entry, as `StreamConfig::paths` wants
/// them: `index + 1` of the first path in the low nibble, of the second (or of an argv,
/// with `ARG_IS_ARGV`) in the high one.
pub fn path_nibbles(name: &str) -> u8 {
    let Some((args, _)) = signature(name) else {
        return 0;
    };
    let mut idx = args.iter().enumerate().filter_map(|(i, a)| match a {
        Path => Some(i as u8 + 1),
        Argv => Some((i as u8 + 1) | ARG_IS_ARGV),
        _ => None,
    });
    let first = idx.next().unwrap_or(0);
    let second = idx.next().unwrap_or(0);
    first | second << 4
}

/// Which argument of `name` is a socket address the kernel captures at exit, as
/// `StreamConfig::addrs` wants it: `index + 1` in the low nibble, its length's in the high
/// one (with `LEN_IS_PTR` for a `socklen_t *`).
pub fn addr_nibbles(name: &str) -> u8 {
    let Some((args, _)) = signature(name) else {
        return 0;
    };
    let Some(at) = args.iter().position(|a| *a == Addr) else {
        return 0;
    };
    let len = match args.get(at + 1) {
        Some(AddrLenPtr) => (at as u8 + 2) | LEN_IS_PTR,
        Some(_) => at as u8 + 2,
        None => return 0,
    };
    (at as u8 + 1) | len << 4
}

/// How many arguments strace prints for `name` (its table), else 6.
pub fn nargs(name: &str) -> usize {
    super::classes::NARGS
        .iter()
        .find(|n| n.0 == name)
        .map_or(6, |n| n.1 as usize)
}

/// Argument `i` of `raw` decoded (what the kernel captured, a `Path`, `Argv` or `Addr`,
/// as its pointer: the caller shows the capture instead); None for an argument strace
/// leaves out (a mode `open` does not take). The others are read for context (a
/// `CreateMode` follows `open`'s flags, a `Protocol` is named by its domain).
pub fn show(kind: Arg, raw: &[u64], i: usize) -> Option<String> {
    let v = raw.get(i).copied().unwrap_or(0);
    let prev = if i > 0 { raw[i - 1] } else { 0 };
    Some(match kind {
        CreateMode if !decode::open_has_mode(prev) => return None,
        Fd => decode::fd(v),
        DirFd => decode::dirfd(v),
        Path | Ptr | Argv | Addr | AddrLenPtr => decode::ptr(v),
        Family => decode::family(v),
        SockType => decode::sock_type(v),
        Protocol => decode::protocol(raw.first().copied().unwrap_or(0), v),
        SockFlags => decode::sock_flags(v),
        MsgFlags => decode::msg_flags(v),
        CloneFlags => decode::clone_flags(v),
        OpenFlags => decode::open_flags(v),
        FdFlags => decode::fd_flags(v),
        CreateMode | Mode => decode::mode(v),
        AccessMode => decode::access_mode(v),
        AtFlags => decode::at_flags(v),
        RenameFlags => decode::rename_flags(v),
        Prot => decode::prot(v),
        MapFlags => decode::map_flags(v),
        Signal => decode::signal(v),
        Hex => decode::hex(v),
        Int => (v as i64).to_string(),
        UInt => v.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_arguments_of_the_file_families() {
        assert_eq!(path_nibbles("openat"), 2);
        assert_eq!(path_nibbles("open"), 1);
        assert_eq!(path_nibbles("rename"), 1 | 2 << 4);
        assert_eq!(path_nibbles("renameat2"), 2 | 4 << 4);
        assert_eq!(path_nibbles("symlinkat"), 1 | 3 << 4);
        assert_eq!(path_nibbles("read"), 0);
        assert_eq!(path_nibbles("getppid"), 0);
        // execve's argv in the high nibble, marked.
        assert_eq!(path_nibbles("execve"), 1 | (2 | ARG_IS_ARGV) << 4);
        assert_eq!(path_nibbles("execveat"), 2 | (3 | ARG_IS_ARGV) << 4);
    }

    #[test]
    fn socket_address_arguments() {
        assert_eq!(addr_nibbles("connect"), 2 | 3 << 4);
        assert_eq!(addr_nibbles("bind"), 2 | 3 << 4);
        assert_eq!(addr_nibbles("sendto"), 5 | 6 << 4);
        assert_eq!(addr_nibbles("accept"), 2 | (3 | LEN_IS_PTR) << 4);
        assert_eq!(addr_nibbles("accept4"), 2 | (3 | LEN_IS_PTR) << 4);
        assert_eq!(addr_nibbles("recvfrom"), 5 | (6 | LEN_IS_PTR) << 4);
        assert_eq!(addr_nibbles("getpeername"), 2 | (3 | LEN_IS_PTR) << 4);
        assert_eq!(addr_nibbles("openat"), 0);
        // No call has both: the kernel keeps one scheme per call.
        for (name, _, _) in SIGNATURES {
            assert!(path_nibbles(name) == 0 || addr_nibbles(name) == 0, "{name}");
        }
    }

    #[test]
    fn argument_counts_from_strace() {
        assert_eq!(nargs("getppid"), 0);
        assert_eq!(nargs("openat"), 4);
        assert_eq!(nargs("mmap"), 6);
        assert_eq!(nargs("no_such_call"), 6);
    }

    #[test]
    fn a_mode_only_when_creating() {
        let creat = libc::O_CREAT as u64;
        assert_eq!(
            show(CreateMode, &[creat, 0o644], 1).as_deref(),
            Some("0644")
        );
        assert_eq!(show(CreateMode, &[0, 0], 1), None);
        assert_eq!(show(Int, &[u64::MAX], 0).as_deref(), Some("-1"));
        // A protocol by its domain.
        assert_eq!(
            show(Protocol, &[2, 1, 6], 2).as_deref(),
            Some("IPPROTO_TCP")
        );
        assert_eq!(show(Protocol, &[1, 1, 0], 2).as_deref(), Some("0"));
    }
}
