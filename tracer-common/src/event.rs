//! Discrete events sent through the ring buffer: every record is an [`Event<T>`], a fixed
//! [`Header`] followed by the payload of its [`Kind`]. Kind ids are stable: new kinds get new
//! numbers, old numbers are never reused.

/// What an event is. Stable ids.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A traced process created a thread or a child process ([`Fork`]).
    Fork = 1,
    /// A traced process called exec ([`Exec`]).
    Exec = 2,
    /// A thread or process of a traced process ended ([`Exit`]).
    Exit = 3,
    /// A signal was sent to a traced process ([`Signal`]).
    Signal = 4,
    /// The OOM killer chose a victim anywhere on the machine ([`OomKill`]).
    OomKill = 5,
}

impl TryFrom<u32> for Kind {
    type Error = u32;
    fn try_from(v: u32) -> Result<Self, u32> {
        Ok(match v {
            1 => Kind::Fork,
            2 => Kind::Exec,
            3 => Kind::Exit,
            4 => Kind::Signal,
            5 => Kind::OomKill,
            other => return Err(other),
        })
    }
}

/// First bytes of every event.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// A [`Kind`] as u32.
    pub kind: u32,
    /// Target slot of the traced process the event belongs to.
    pub slot: u32,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when it happened.
    pub ts_ns: u64,
    /// Thread and process the event is about.
    pub tid: u32,
    pub tgid: u32,
}
const _: () = assert!(core::mem::size_of::<Header>() == 24);

/// A ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<T> {
    pub header: Header,
    pub data: T,
}

/// A new task; `header.tid/tgid` are the parent's.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fork {
    pub child_tid: u32,
    pub child_tgid: u32,
    /// 1 if the child is a new process (not a thread) and is traced too (`--follow`).
    pub followed: u32,
    pub _pad: u32,
    /// The child's `task_struct.start_boottime` (ns since boot): with its id, who it is
    /// (/proc/PID/stat's start time is this in clock ticks).
    pub child_start_ns: u64,
}
const _: () = assert!(core::mem::size_of::<Fork>() == 24);

/// An exec; `header.tid/tgid` are the process's after the exec.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exec {
    /// Thread id before the exec (differs when a non-leader thread exec'd).
    pub old_tid: u32,
    pub _pad: u32,
    /// The new program's name (task comm), NUL-padded.
    pub comm: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<Exec>() == 24);

/// A task ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Wait status as the kernel keeps it: exit code << 8, or the killing signal (| 0x80
    /// with a core dump).
    pub exit_code: u32,
    /// 1 if this was the last thread of its process (the process exited).
    pub group_dead: u32,
}
const _: () = assert!(core::mem::size_of::<Exit>() == 8);

/// A signal sent to a traced process; `header.tid/tgid` are the target's.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    pub sig: u32,
    /// The sending process (the task that was running when it was generated); meaningless
    /// when `from_kernel`.
    pub sender_tgid: u32,
    /// The kernel's `enum trace_signal_result` (0 = delivered).
    pub result: u32,
    /// 1 when the kernel generated it (a fault's SIGSEGV, a child's SIGCHLD, the OOM
    /// killer's SIGKILL, a timer's...), 0 when a process sent it (kill, tgkill, sigqueue).
    pub from_kernel: u32,
}
const _: () = assert!(core::mem::size_of::<Signal>() == 16);

/// Target slot of an event about a process that is not traced (OOM kills are reported for
/// every process on the machine).
pub const UNTRACED_SLOT: u32 = u32::MAX;

/// The OOM killer marked a victim (`oom:mark_victim`); `header.tid/tgid` are the victim's,
/// `header.slot` its target slot or [`UNTRACED_SLOT`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OomKill {
    /// The victim's RSS when it was chosen, in bytes, by kind.
    pub anon_rss: u64,
    pub file_rss: u64,
    pub shmem_rss: u64,
    pub swap: u64,
    /// Mapped virtual memory in bytes.
    pub total_vm: u64,
    /// Id of the victim's memory cgroup (its kernfs id = the directory's inode number).
    pub cgroup_id: u64,
    /// 1 if the victim is a traced process.
    pub traced: u32,
    pub _pad: u32,
    /// The victim's name (task comm), NUL-padded.
    pub comm: [u8; 16],
    /// Last component of the memory cgroup's path, NUL-padded (the full path is looked up
    /// by id in userspace; this is the fallback when the cgroup is gone by then).
    pub cgroup_name: [u8; 64],
}
const _: () = assert!(core::mem::size_of::<OomKill>() == 136);

/// Size of the event ring buffer in bytes (a power of two, a multiple of the page size).
pub const RING_BYTES: u32 = 256 * 1024;
