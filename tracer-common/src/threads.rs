//! Per-thread syscall tables (`--threads`, as `perf trace -s` has): each traced thread's
//! calls, errors and time per syscall, in [`super::maps::THREAD_CALLS`], an LRU hash map
//! (ended threads' rows make room for live ones' when it is full).

/// Key of [`super::maps::THREAD_CALLS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadCallKey {
    pub tid: u32,
    /// The x86_64 syscall number, or `SYSCALL_SLOTS` + the i386 one (userspace's
    /// numbering, see `row_key`).
    pub nr: u32,
}
const _: () = assert!(core::mem::size_of::<ThreadCallKey>() == 8);

/// A thread's counts of one syscall, cumulative. `total_ns` is weighted like the process
/// table's (sampled calls stand for the calls they represent).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadCalls {
    /// The thread's process: a later thread of another process given the id starts anew.
    pub tgid: u32,
    pub _pad: u32,
    pub calls: u64,
    pub errors: u64,
    pub total_ns: u64,
}
const _: () = assert!(core::mem::size_of::<ThreadCalls>() == 32);

/// Rows kept (thread, syscall) with `--threads`: where preallocated (before Linux 6.1),
/// about 2.6 MiB of kernel memory; from 6.1, what the rows in use take. Without
/// `--threads` the map has one entry.
pub const MAX_THREAD_CALLS: u32 = 32768;
