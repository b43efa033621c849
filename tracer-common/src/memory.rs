//! Memory and file-descriptor accounting shared by the kernel side and userspace.

/// What a syscall does to memory or descriptors; the value of [`crate::maps::MEM_CLASS`]
/// for its number. Userspace fills the table (from syscall names), the kernel only reads
/// it, so no syscall number is written down twice.
pub mod class {
    pub const NONE: u32 = 0;
    /// `brk`: the return value is the new program break.
    pub const BRK: u32 = 1;
    /// `mmap(addr, len, prot, flags, fd, off)`: `len` bytes mapped on success.
    pub const MMAP: u32 = 2;
    /// `munmap(addr, len)`: `len` bytes unmapped on success.
    pub const MUNMAP: u32 = 3;
    /// `mremap(addr, old_len, new_len, ...)`: grows or shrinks a mapping.
    pub const MREMAP: u32 = 4;
    /// Returns one new descriptor on success (open, socket, dup, eventfd, ...).
    pub const FD_NEW: u32 = 5;
    /// Creates two descriptors and returns 0 (pipe, pipe2, socketpair).
    pub const FD_PAIR: u32 = 6;
    /// `close(fd)`: one descriptor fewer on success.
    pub const FD_CLOSE: u32 = 7;
    /// `fcntl(fd, cmd, ...)`: a new descriptor when cmd is F_DUPFD or F_DUPFD_CLOEXEC.
    pub const FD_FCNTL: u32 = 8;
    /// `signalfd(fd, ...)`/`signalfd4`: a new descriptor only when `fd` is -1.
    pub const FD_SIGNALFD: u32 = 9;
    /// `dup2(old, new)`/`dup3`: a new descriptor only when `new` was not open (sys_enter
    /// looks, see [`super::MemConfig`]); otherwise it replaces one.
    pub const FD_DUP2: u32 = 10;
    /// `close_range`, `execve`, `execveat`: on success, close the descriptors sys_enter
    /// counted (open ones in the range; those marked close-on-exec).
    pub const FD_CLOSE_MANY: u32 = 11;
    /// `recvmsg(fd, msg, flags)`: descriptors received in `SCM_RIGHTS` control messages
    /// (read from `msg` at exit: the kernel has set `msg_controllen` to what it wrote).
    pub const FD_RECVMSG: u32 = 12;
    /// `recvmmsg(fd, msgvec, vlen, flags, timeout)`: the same for each message received.
    pub const FD_RECVMMSG: u32 = 13;
    /// i386 `mmap(struct mmap_arg_struct32 *)` (the old one, number 90): length and flags
    /// read from the caller's struct.
    pub const MMAP_STRUCT32: u32 = 14;
    /// i386 `socketcall(call, u32 args[])`: `socket`, `accept`, `accept4`, `socketpair`,
    /// `recvmsg`, `recvmmsg` by their `call` number, arguments read from the caller's array.
    pub const FD_SOCKETCALL: u32 = 15;
    /// Number of classes.
    pub const COUNT: u32 = 16;
}

/// The memory section's switch and the syscall numbers sys_enter must recognize, set by
/// userspace at load time (a .rodata global: the verifier sees the values as constants).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemConfig {
    /// 1 when the memory section is selected.
    pub enabled: u32,
    /// Numbers of `dup2`, `dup3`, `close_range`, `execve`, `execveat`.
    pub nr_dup2: u32,
    pub nr_dup3: u32,
    pub nr_close_range: u32,
    pub nr_execve: u32,
    pub nr_execveat: u32,
    /// The same, i386 numbers (for 32-bit syscalls).
    pub nr32_dup2: u32,
    pub nr32_dup3: u32,
    pub nr32_close_range: u32,
    pub nr32_execve: u32,
    pub nr32_execveat: u32,
}
const _: () = assert!(core::mem::size_of::<MemConfig>() == 44);

/// Bits of `ThreadState::flags` set by sys_enter for sys_exit.
pub mod enter_flags {
    /// sys_enter looked at a dup2/dup3 target descriptor...
    pub const DUP_CHECKED: u32 = 1;
    /// ...and it was open (the call replaces it).
    pub const DUP_TARGET_OPEN: u32 = 2;
    /// The call closes `flags >> CLOSES_SHIFT` descriptors if it succeeds (close_range,
    /// exec).
    pub const CLOSES: u32 = 4;
    pub const CLOSES_SHIFT: u32 = 3;
}

/// Constants the kernel side compares syscall arguments with (the same on x86_64 and i386).
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const F_DUPFD: u64 = 0;
pub const F_DUPFD_CLOEXEC: u64 = 1030;
pub const CLOSE_RANGE_CLOEXEC: u64 = 1 << 2;
/// Where a received message's control messages are, in the caller's memory: the layout of
/// `struct msghdr`, `struct mmsghdr` and `struct cmsghdr` for one ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgLayout {
    /// Size of a pointer or `size_t`/`socklen_t` length in these structs (8 or 4).
    pub word: u64,
    /// Offsets of `msghdr.msg_control` and `msghdr.msg_controllen`.
    pub control: u64,
    pub controllen: u64,
    /// `sizeof(struct mmsghdr)`.
    pub mmsghdr: u64,
    /// `sizeof(struct cmsghdr)` (`cmsg_len`, `cmsg_level` i32, `cmsg_type` i32), after
    /// which an `SCM_RIGHTS` message holds i32 descriptors; control messages are aligned
    /// to `word`.
    pub cmsghdr: u64,
}

impl MsgLayout {
    pub const X86_64: MsgLayout = MsgLayout {
        word: 8,
        control: 32,
        controllen: 40,
        mmsghdr: 64,
        cmsghdr: 16,
    };
    /// The compat layout (`struct compat_msghdr`, `compat_mmsghdr`, `compat_cmsghdr`).
    pub const I386: MsgLayout = MsgLayout {
        word: 4,
        control: 16,
        controllen: 20,
        mmsghdr: 32,
        cmsghdr: 12,
    };
}

/// i386 `socketcall` call numbers that create descriptors (`linux/net.h`'s `SYS_*`).
pub mod socketcall {
    pub const SOCKET: u64 = 1;
    pub const ACCEPT: u64 = 5;
    pub const SOCKETPAIR: u64 = 8;
    pub const RECVMSG: u64 = 17;
    pub const ACCEPT4: u64 = 18;
    pub const RECVMMSG: u64 = 19;
}
/// i386 `struct mmap_arg_struct32`: offsets of `len` and `flags` (u32 each).
pub const MMAP_ARG32_LEN: u64 = 4;
pub const MMAP_ARG32_FLAGS: u64 = 12;
pub const SOL_SOCKET: u32 = 1;
pub const SCM_RIGHTS: u32 = 1;
/// Control messages read per message, and messages per `recvmmsg`; beyond, descriptors
/// are not counted (counted as `Drop::FdsUnscanned`).
pub const MAX_CMSGS: u64 = 4;
pub const MAX_MMSGS: u64 = 8;

/// Bitmap words of the descriptor table sys_enter scans for close_range and exec:
/// descriptors 0..8191. Beyond, closes are not counted (/proc's count shows it). The
/// verifier walks every iteration when it loads sys_enter: this bounds tracer's start-up.
pub const MAX_FD_WORDS: u64 = 128;

/// What one traced process did to its memory and descriptors, from its syscalls. One
/// entry per target slot, shared by all CPUs: counters are atomic adds, `brk`/`start_brk`
/// plain stores (a process's brk calls are serialized by the kernel anyway).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemSyscalls {
    /// Bytes (rounded up to pages) mapped by successful anonymous / file-backed `mmap`s.
    pub anon_mapped: u64,
    pub file_mapped: u64,
    /// Bytes (rounded up to pages) given back by successful `munmap`s.
    pub unmapped: u64,
    /// Bytes by which successful `mremap`s grew / shrank mappings.
    pub remap_grown: u64,
    pub remap_shrunk: u64,
    /// The program break after the latest `brk` (0: no `brk` seen), and `mm->start_brk`
    /// (where the heap begins) read at that moment.
    pub brk: u64,
    pub start_brk: u64,
    /// Descriptors created / closed by successful syscalls.
    pub fds_opened: u64,
    pub fds_closed: u64,
    /// Highest `fds_opened - fds_closed` seen after an open (0 if never above 0).
    pub fds_peak_net: u64,
}
const _: () = assert!(core::mem::size_of::<MemSyscalls>() == 80);

/// RSS counters of a traced process's mm (pages), as one CPU last saw them in `rss_stat`.
/// Userspace takes the newest (`ts_ns`) over CPUs for "now" and the maximum `peak_pages`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RssSnapshot {
    /// `bpf_ktime_get_ns()` of the update (0: never updated on this CPU).
    pub ts_ns: u64,
    pub file_pages: u64,
    pub anon_pages: u64,
    pub shmem_pages: u64,
    pub swap_pages: u64,
    /// Highest file + anon + shmem seen on this CPU.
    pub peak_pages: u64,
    /// When the process's memory was torn down at its exit (0: not seen on this CPU), and
    /// its minor/major fault counts at that moment (what /proc/PID/stat would have said).
    pub exit_ts_ns: u64,
    pub exit_minflt: u64,
    pub exit_majflt: u64,
}
const _: () = assert!(core::mem::size_of::<RssSnapshot>() == 72);
