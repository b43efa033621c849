//! Discrete events sent through the ring buffer: every record is an [`Event<T>`], a fixed
//! [`Header`] followed by the payload of its [`Kind`]. Kind ids are stable: new kinds get new
//! numbers, old numbers are never reused.
//!
//! [`decode`] reads a record back in userspace (tracer, and the fuzz target in `fuzz/`):
//! length checked, read unaligned, kind matched through `TryFrom`, never transmuted.
use core::{fmt, mem::size_of};

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
    /// A selector (`--comm`, `--cgroup`, `--exe`) took a process in ([`Taken`]).
    Taken = 6,
    /// An event loop's iteration passed the stall threshold ([`Stall`]).
    Stall = 7,
    /// A traced thread got a crash signal ([`Crash`]; sent besides its [`Signal`]).
    Crash = 8,
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
            6 => Kind::Taken,
            7 => Kind::Stall,
            8 => Kind::Crash,
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exit {
    /// Wait status as the kernel keeps it: exit code << 8, or the killing signal (| 0x80
    /// with a core dump).
    pub exit_code: u32,
    /// 1 if this was the last thread of its process (the process exited).
    pub group_dead: u32,
    /// When `group_dead`: the process's final own counts ([`crate::ProcCalls`]), start
    /// included; zeros otherwise.
    pub calls: u64,
    pub errors: u64,
    pub start_ns: u64,
}
const _: () = assert!(core::mem::size_of::<Exit>() == 32);

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

/// Signals that report a crash: those a fault raises (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
/// SIGTRAP, SIGSYS) and abort()'s SIGABRT. Each ends a process with a core dump by default.
pub const CRASH_SIGNALS: [u32; 7] = [4, 5, 6, 7, 8, 11, 31];

/// Whether `sig` is one of [`CRASH_SIGNALS`].
#[inline(always)]
pub fn is_crash_signal(sig: u32) -> bool {
    // SIGILL 4, SIGTRAP 5, SIGABRT 6, SIGBUS 7, SIGFPE 8, SIGSEGV 11, SIGSYS 31.
    matches!(sig, 4..=8 | 11 | 31)
}

/// `si_code` values the kernel uses when a signal comes without a siginfo: `SEND_SIG_NOINFO`
/// (a process's plain send) reads as `SI_USER`, `SEND_SIG_PRIV` (the kernel's) as
/// `SI_KERNEL`.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;

/// A crash signal ([`CRASH_SIGNALS`]) generated for a traced thread, with what its siginfo
/// says; `header.tid/tgid` are the thread's (the one that faulted, for a fault).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crash {
    pub sig: u32,
    /// siginfo's `si_code`: `SEGV_MAPERR`, `BUS_ADRERR`, ... for a fault (> 0), `SI_TKILL`
    /// for abort()'s tgkill, [`SI_USER`] / [`SI_KERNEL`] when there was no siginfo.
    pub code: i32,
    /// The first word of siginfo's union: for a fault, the faulting address (`si_addr`; of
    /// the instruction for SIGILL, SIGFPE, SIGTRAP; of the call for SIGSYS). 0 when there
    /// was no siginfo.
    pub addr: u64,
    /// The thread's user instruction pointer when it signalled itself (a fault, abort's
    /// tgkill): from the registers it entered the kernel with. 0 when not read.
    pub ip: u64,
    /// The process that sent it (the task running when it was generated); meaningless
    /// when `from_kernel`.
    pub sender_tgid: u32,
    /// 1 when the kernel generated it, as [`Signal::from_kernel`].
    pub from_kernel: u32,
    /// The thread's name (task comm), NUL-padded.
    pub comm: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<Crash>() == 48);

/// What made a selector take a process in ([`Taken::cause`]).
pub mod taken_cause {
    /// An exec of the selected program (`--exe`).
    pub const EXEC: u32 = 1;
    /// A move into the selected cgroup.
    pub const CGROUP: u32 = 2;
    /// Its main thread took the selected name (`--comm`): at an exec, or renamed (prctl
    /// PR_SET_NAME, a write to /proc/PID/comm). The kernel names the task during an exec
    /// through the same path, before the exec's own tracepoint.
    pub const NAME: u32 = 3;
}

/// A selector took a process in; `header.slot` is the selector's, `header.tgid` the
/// process's (`header.tid` the thread that exec'd, moved or was renamed).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// The selector's kind: a `target_flags` `BY_*` flag.
    pub how: u32,
    /// A [`taken_cause`].
    pub cause: u32,
    /// The process's start (`start_boottime`, ns since boot): with its id, who it is.
    pub start_ns: u64,
}
const _: () = assert!(core::mem::size_of::<Taken>() == 16);

/// An event loop's iteration (from the return of one wait to the entry of the next, see
/// [`crate::loops`]) lasted at least `--stall`; `header.ts_ns` is its end, `header.tid`
/// the loop thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    /// Its length.
    pub busy_ns: u64,
    /// Of which on a CPU and waiting for one, as the kernel accounts them (within a tick);
    /// the rest it was blocked.
    pub on_cpu_ns: u64,
    pub runq_ns: u64,
    /// Syscalls it made meanwhile, and the slowest of them that was timed (x86_64 number;
    /// `slow_ns` 0 if none).
    pub calls: u32,
    pub slow_nr: u32,
    pub slow_ns: u64,
    /// The thread's name, NUL-padded.
    pub comm: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<Stall>() == 56);

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

impl OomKill {
    /// A record with known values (tracer-workload killed in a cgroup of 1 GiB of virtual
    /// memory, 64 MiB anonymous and 4 KiB file RSS, cgroup id 1234, traced), named
    /// `cgroup_name` (at most 64 bytes): for tests and fuzzing seeds.
    pub fn example(cgroup_name: &[u8]) -> Self {
        let mut name = [0u8; 64];
        let n = cgroup_name.len().min(64);
        name[..n].copy_from_slice(&cgroup_name[..n]);
        OomKill {
            anon_rss: 64 << 20,
            file_rss: 4096,
            shmem_rss: 0,
            swap: 0,
            total_vm: 1 << 30,
            cgroup_id: 1234,
            traced: 1,
            _pad: 0,
            comm: *b"tracer-workload\0",
            cgroup_name: name,
        }
    }
}

/// Size of the event ring buffer in bytes (a power of two, a multiple of the page size).
pub const RING_BYTES: u32 = 256 * 1024;

/// A decoded ring-buffer record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub header: Header,
    pub data: EventData,
}

/// The payload of a decoded record, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventData {
    Fork(Fork),
    Exec(Exec),
    Exit(Exit),
    Signal(Signal),
    OomKill(OomKill),
    Taken(Taken),
    Stall(Stall),
    Crash(Crash),
}

// Records have no padding, so every byte of one is the header's or the payload's: decoding
// and encoding are exact inverses, and an encoded record has no uninitialised byte.
const _: () = {
    assert!(size_of::<Event<Fork>>() == size_of::<Header>() + size_of::<Fork>());
    assert!(size_of::<Event<Exec>>() == size_of::<Header>() + size_of::<Exec>());
    assert!(size_of::<Event<Exit>>() == size_of::<Header>() + size_of::<Exit>());
    assert!(size_of::<Event<Signal>>() == size_of::<Header>() + size_of::<Signal>());
    assert!(size_of::<Event<OomKill>>() == size_of::<Header>() + size_of::<OomKill>());
    assert!(size_of::<Event<Taken>>() == size_of::<Header>() + size_of::<Taken>());
    assert!(size_of::<Event<Stall>>() == size_of::<Header>() + size_of::<Stall>());
    assert!(size_of::<Event<Crash>>() == size_of::<Header>() + size_of::<Crash>());
};

/// Size of the largest record (an OOM kill's).
pub const MAX_RECORD: usize = size_of::<Event<OomKill>>();

/// Why a ring-buffer record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than a [`Header`].
    Short(usize),
    /// A kind this version does not know.
    UnknownKind(u32),
    /// Fewer bytes than the header and the payload of its kind.
    Truncated { kind: Kind, len: usize, want: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short(len) => write!(f, "event of {len} bytes is shorter than its header"),
            DecodeError::UnknownKind(kind) => write!(f, "unknown event kind {kind}"),
            DecodeError::Truncated { kind, len, want } => {
                write!(f, "{kind:?} event of {len} bytes, expected {want}")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

fn read<T: Copy>(bytes: &[u8], kind: Kind) -> Result<T, DecodeError> {
    let want = size_of::<Event<T>>();
    if bytes.len() < want {
        return Err(DecodeError::Truncated {
            kind,
            len: bytes.len(),
            want,
        });
    }
    // SAFETY: the length was checked; Event<T> is repr(C) plain data, valid for any bytes;
    // read_unaligned makes no alignment assumption about the ring buffer's bytes.
    Ok(unsafe { bytes.as_ptr().cast::<Event<T>>().read_unaligned() }.data)
}

/// Decodes one ring-buffer record. Bytes after the record (ring-buffer records may be
/// padded) are ignored.
pub fn decode(bytes: &[u8]) -> Result<RawEvent, DecodeError> {
    if bytes.len() < size_of::<Header>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: as in `read`.
    let header = unsafe { bytes.as_ptr().cast::<Header>().read_unaligned() };
    let kind = Kind::try_from(header.kind).map_err(DecodeError::UnknownKind)?;
    let data = match kind {
        Kind::Fork => EventData::Fork(read(bytes, kind)?),
        Kind::Exec => EventData::Exec(read(bytes, kind)?),
        Kind::Exit => EventData::Exit(read(bytes, kind)?),
        Kind::Signal => EventData::Signal(read(bytes, kind)?),
        Kind::OomKill => EventData::OomKill(read(bytes, kind)?),
        Kind::Taken => EventData::Taken(read(bytes, kind)?),
        Kind::Stall => EventData::Stall(read(bytes, kind)?),
        Kind::Crash => EventData::Crash(read(bytes, kind)?),
    };
    Ok(RawEvent { header, data })
}

fn record<T: Copy>(header: Header, data: T) -> ([u8; MAX_RECORD], usize) {
    let len = size_of::<Event<T>>();
    let mut out = [0; MAX_RECORD];
    let dst = &mut out[..len];
    // SAFETY: `dst` holds exactly one Event<T>; write_unaligned makes no alignment
    // assumption; Event<T> has no padding (asserted above), so every byte is written.
    unsafe {
        dst.as_mut_ptr()
            .cast::<Event<T>>()
            .write_unaligned(Event { header, data })
    };
    (out, len)
}

impl RawEvent {
    /// False for events about untraced processes (OOM kills elsewhere on the machine).
    pub fn is_about_a_target(&self) -> bool {
        self.header.slot != UNTRACED_SLOT
    }

    /// The record as the kernel side writes it: the first `len` bytes of the array
    /// (the rest are zeros). [`decode`] gives back `self` from them.
    pub fn encode(&self) -> ([u8; MAX_RECORD], usize) {
        match self.data {
            EventData::Fork(d) => record(self.header, d),
            EventData::Exec(d) => record(self.header, d),
            EventData::Exit(d) => record(self.header, d),
            EventData::Signal(d) => record(self.header, d),
            EventData::OomKill(d) => record(self.header, d),
            EventData::Taken(d) => record(self.header, d),
            EventData::Stall(d) => record(self.header, d),
            EventData::Crash(d) => record(self.header, d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_event_round_trips() {
        let ev = RawEvent {
            header: Header {
                kind: Kind::Exit as u32,
                slot: 0,
                ts_ns: 42,
                tid: 7,
                tgid: 7,
            },
            data: EventData::Exit(Exit {
                exit_code: 3 << 8,
                group_dead: 1,
                calls: 1001,
                errors: 2,
                start_ns: 5_000_000,
            }),
        };
        let (mut b, len) = ev.encode();
        // The kernel side's layout, field by field (x86_64: little-endian).
        let mut want = [0u8; 56];
        want[0..4].copy_from_slice(&3u32.to_le_bytes());
        want[8..16].copy_from_slice(&42u64.to_le_bytes());
        want[16..20].copy_from_slice(&7u32.to_le_bytes());
        want[20..24].copy_from_slice(&7u32.to_le_bytes());
        want[24..28].copy_from_slice(&(3u32 << 8).to_le_bytes());
        want[28..32].copy_from_slice(&1u32.to_le_bytes());
        want[32..40].copy_from_slice(&1001u64.to_le_bytes());
        want[40..48].copy_from_slice(&2u64.to_le_bytes());
        want[48..56].copy_from_slice(&5_000_000u64.to_le_bytes());
        assert_eq!(&b[..len], &want);
        b[len] = 0xAA; // ring-buffer records may be padded: extra bytes are ignored
        assert_eq!(decode(&b[..len + 1]), Ok(ev));
    }

    #[test]
    fn crash_event_round_trips() {
        let mut comm = [0u8; 16];
        comm[..7].copy_from_slice(b"crasher");
        let ev = RawEvent {
            header: Header {
                kind: Kind::Crash as u32,
                slot: 1,
                ts_ns: 9,
                tid: 8,
                tgid: 7,
            },
            data: EventData::Crash(Crash {
                sig: 11,
                code: 2,
                addr: 0x7f00_0000_1000,
                ip: 0x5555_0000_0042,
                sender_tgid: 7,
                from_kernel: 1,
                comm,
            }),
        };
        let (b, len) = ev.encode();
        assert_eq!(len, 24 + 48);
        // The kernel side's layout: code at 28, the address at 32, the ip at 40, the name
        // at 56.
        assert_eq!(&b[28..32], &2i32.to_le_bytes());
        assert_eq!(&b[32..40], &0x7f00_0000_1000u64.to_le_bytes());
        assert_eq!(&b[40..48], &0x5555_0000_0042u64.to_le_bytes());
        assert_eq!(&b[56..63], b"crasher");
        assert_eq!(decode(&b[..len]), Ok(ev));
        assert!(CRASH_SIGNALS.iter().all(|&s| is_crash_signal(s)));
        assert_eq!((1..=64).filter(|&s| is_crash_signal(s)).count(), 7);
    }

    #[test]
    fn oom_kill_event_round_trips() {
        let ev = RawEvent {
            header: Header {
                kind: Kind::OomKill as u32,
                slot: UNTRACED_SLOT,
                ts_ns: 2_000_000_000,
                tid: 77,
                tgid: 77,
            },
            data: EventData::OomKill(OomKill::example(b"test")),
        };
        let (b, len) = ev.encode();
        assert_eq!(len, MAX_RECORD);
        assert_eq!(decode(&b[..len]), Ok(ev));
        assert!(!ev.is_about_a_target());
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        assert_eq!(decode(&[1, 2, 3]), Err(DecodeError::Short(3)));
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(decode(&h), Err(DecodeError::UnknownKind(99)));
        h[0..4].copy_from_slice(&(Kind::Signal as u32).to_le_bytes());
        assert_eq!(
            decode(&h),
            Err(DecodeError::Truncated {
                kind: Kind::Signal,
                len: 24,
                want: 40
            })
        );
    }
}
