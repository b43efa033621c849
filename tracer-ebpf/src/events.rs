//! The ring buffer of discrete events and the kernel offsets global. Events are rare
//! (fork, exec, exit, signal, OOM): hot counters never go through here.
use aya_ebpf::{helpers::bpf_probe_read_kernel, macros::map, maps::RingBuf};
use tracer_common::{
    Drop, KernelOffsets,
    event::{Event, Header, Kind, RING_BYTES},
};

use crate::filter::count_drop;

#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

/// Struct member offsets from the kernel's BTF, set by userspace at load time.
#[unsafe(no_mangle)]
static OFFSETS: KernelOffsets = KernelOffsets::ZERO;

#[inline(always)]
pub fn offsets() -> &'static KernelOffsets {
    rodata(&OFFSETS)
}

/// A global in .rodata, set by userspace at load time, seen through a pointer the optimizer
/// cannot follow: it must not fold in the initializer's zeros, and a caller loads only the
/// fields it uses (a volatile read of the whole struct would load every field, on every
/// context switch).
#[inline(always)]
pub fn rodata<T>(global: &'static T) -> &'static T {
    let p: *const T = global;
    // SAFETY: a volatile read of a local pointer to a static; it still points to the static.
    unsafe { &*core::ptr::read_volatile(&p) }
}

/// `v`, of which the compiler knows nothing (libbpf's `barrier_var`): an empty asm block
/// that takes and gives back the register. A mask or bounds check applied to the result
/// stays in the program: the compiler cannot drop it or fold it into earlier tests of the
/// value. The verifiers of Linux 5.10 and 6.1 follow a test's impossible branch with
/// contradictory bounds, and lose a bound of a value spilled to the stack before the
/// test; where the compiler had relied on a test made earlier, they rejected the index.
#[inline(always)]
pub fn opaque(mut v: u64) -> u64 {
    // SAFETY: an empty block: no instruction is emitted, no memory is touched.
    unsafe {
        core::arch::asm!("/* {0} */", inout(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Bucket `b` of a histogram (or entry `b` of a counter array), behind a bounds check that
/// stays in the program (see [`opaque`]).
#[inline(always)]
pub fn hist_slot<const N: usize>(h: &mut [u64; N], b: usize) -> Option<&mut u64> {
    h.get_mut(opaque(b as u64) as usize)
}

/// Reads a `T` at `base + off` in kernel memory.
#[inline(always)]
pub fn read_at<T>(base: u64, off: u32) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one is an error, not a fault.
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T).ok() }
}

/// Thread id and process id of a `task_struct *`. On every context switch and wakeup of
/// the machine: one read when `tgid` follows `pid`, as it does in every kernel's
/// task_struct so far (the offsets are in .rodata, so the verifier drops the other branch).
#[inline(always)]
pub fn task_ids(task: u64) -> Option<(u32, u32)> {
    let o = offsets();
    if o.task_tgid == o.task_pid + 4 {
        let [pid, tgid] = read_at::<[u32; 2]>(task, o.task_pid)?;
        return Some((pid, tgid));
    }
    Some((
        read_at::<u32>(task, o.task_pid)?,
        read_at::<u32>(task, o.task_tgid)?,
    ))
}

/// The `start_boottime` of the process a `task_struct *` belongs to (its leader's): with
/// the process id, who the process is (/proc/PID/stat's start time, in ns). 0 if unread.
#[inline(always)]
pub fn process_start(task: u64) -> u64 {
    let o = offsets();
    read_at::<u64>(task, o.task_group_leader)
        .and_then(|leader| read_at::<u64>(leader, o.task_start_boottime))
        .unwrap_or(0)
}

/// Sends an event; a full ring buffer is counted, never silent.
#[inline(always)]
pub fn submit<T: Copy + 'static>(kind: Kind, slot: u32, ts_ns: u64, tid: u32, tgid: u32, data: T) {
    match EVENTS.reserve::<Event<T>>(0) {
        Some(mut entry) => {
            entry.write(Event {
                header: Header {
                    kind: kind as u32,
                    slot,
                    ts_ns,
                    tid,
                    tgid,
                },
                data,
            });
            entry.submit(0);
        }
        None => count_drop(Drop::RingBufFull),
    }
}
