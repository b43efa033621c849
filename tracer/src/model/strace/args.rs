//! What each syscall's arguments are, for decoding them: a signature per syscall for those
//! decoded so far (the file families, memory, descriptors, signals); every other syscall
//! shows strace's count of its arguments, raw. The path arguments of a signature are what
//! the kernel side captures as strings (`StreamConfig::paths`).
use super::decode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A descriptor.
    Fd,
    /// A directory descriptor (`AT_FDCWD`).
    DirFd,
    /// A path, captured in the kernel.
    Path,
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
    ("execve", &[Path, Ptr, Ptr], false),
    ("execveat", &[DirFd, Path, Ptr, Ptr, AtFlags], false),
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
    ("socket", &[Int, Hex, Int], false),
    ("socketpair", &[Int, Hex, Int, Ptr], false),
    ("connect", &[Fd, Ptr, UInt], false),
    ("bind", &[Fd, Ptr, UInt], false),
    ("listen", &[Fd, Int], false),
    ("accept", &[Fd, Ptr, Ptr], false),
    ("accept4", &[Fd, Ptr, Ptr, Hex], false),
    ("sendto", &[Fd, Ptr, UInt, Hex, Ptr, UInt], false),
    ("recvfrom", &[Fd, Ptr, UInt, Hex, Ptr, Ptr], false),
    ("sendmsg", &[Fd, Ptr, Hex], false),
    ("recvmsg", &[Fd, Ptr, Hex], false),
    ("shutdown", &[Fd, Int], false),
    ("getsockname", &[Fd, Ptr, Ptr], false),
    ("getpeername", &[Fd, Ptr, Ptr], false),
    ("setsockopt", &[Fd, Int, Int, Ptr, UInt], false),
    ("getsockopt", &[Fd, Int, Int, Ptr, Ptr], false),
    ("epoll_ctl", &[Fd, Int, Fd, Ptr], false),
    ("epoll_wait", &[Fd, Ptr, Int, Int], false),
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

/// Which arguments of `name` the kernel captures as paths, as `StreamConfig::paths` wants
/// them: `index + 1` of the first in the low nibble, of the second in the high one.
pub fn path_nibbles(name: &str) -> u8 {
    let Some((args, _)) = signature(name) else {
        return 0;
    };
    let mut idx = args
        .iter()
        .enumerate()
        .filter(|(_, a)| **a == Path)
        .map(|(i, _)| i as u8 + 1);
    let first = idx.next().unwrap_or(0);
    let second = idx.next().unwrap_or(0);
    first | second << 4
}

/// How many arguments strace prints for `name` (its table), else 6.
pub fn nargs(name: &str) -> usize {
    super::classes::NARGS
        .iter()
        .find(|n| n.0 == name)
        .map_or(6, |n| n.1 as usize)
}

/// One argument decoded (a `Path` as its pointer: the caller shows the captured string
/// instead); None for an argument strace leaves out (a mode `open` does not take).
/// `prev` is the argument before (a `CreateMode` follows `open`'s flags).
pub fn show(kind: Arg, v: u64, prev: u64) -> Option<String> {
    Some(match kind {
        CreateMode if !decode::open_has_mode(prev) => return None,
        Fd => decode::fd(v),
        DirFd => decode::dirfd(v),
        Path | Ptr => decode::ptr(v),
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
        assert_eq!(show(CreateMode, 0o644, creat).as_deref(), Some("0644"));
        assert_eq!(show(CreateMode, 0, 0), None);
        assert_eq!(show(Int, u64::MAX, 0).as_deref(), Some("-1"));
    }
}
