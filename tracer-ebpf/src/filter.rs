//! Which processes are traced. Checked first by every hook so that untraced processes
//! leave at once: one inlined array lookup after the pid/tgid helper call; in the syscall
//! hooks, which every process on the machine runs twice per syscall, a load and a compare
//! before it (see [`known_untraced`]).
use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    macros::{map, raw_tracepoint},
    maps::{Array, PerCpuArray},
    programs::RawTracePointContext,
};
use tracer_common::{Drop, ProcCalls, TargetEntry};

use crate::{
    events::{offsets, read_at, task_ids},
    sched, syscalls, table,
};

/// The traced processes: a table by tgid (see [`table`]), sized by userspace at load time.
#[map(name = "TARGETS")]
pub static TARGETS: Array<TargetEntry> = Array::with_max_entries(1, 0);

/// Each traced process's own counts, entry for entry beside [`TARGETS`] (same size).
#[map(name = "PROC_CALLS")]
pub static PROC_CALLS: Array<ProcCalls> = Array::with_max_entries(1, 0);

/// /proc's clock tick (USER_HZ 100), the unit of the process starts userspace writes.
const TICK_NS: u64 = 10_000_000;

/// What could not be recorded, by [`Drop`] kind.
#[map(name = "DROPS")]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(tracer_common::DROP_KINDS, 0);

/// The target slot of a process, if it is traced.
#[inline(always)]
pub fn target_slot(tgid: u32) -> Option<u32> {
    // SAFETY: a map value, valid while the program runs.
    target(tgid).map(|p| unsafe { (*p).slot1 } - 1)
}

/// The filter's entry of a traced process (`slot1` is not 0).
#[inline(always)]
pub fn target(tgid: u32) -> Option<*mut TargetEntry> {
    let p = table::find(&TARGETS, tgid)?;
    // SAFETY: a map value, valid while the program runs.
    (unsafe { (*p).slot1 } != 0).then_some(p)
}

/// Traces process `tgid` under `slot` (a followed child, before it runs, with the flags of
/// its parent's image); `start_ns` is its `start_boottime`, with its id who it is. Its own
/// counts start at zero. False when its set of the table is full.
#[inline(always)]
pub fn set_target(tgid: u32, slot: u32, flags: u32, start_ns: u64) -> bool {
    let i = table::find_or_free_index(&TARGETS, tgid, TargetEntry::reusable);
    match TARGETS.get_ptr_mut(i) {
        Some(p) => {
            if let Some(c) = PROC_CALLS.get_ptr_mut(i) {
                // SAFETY: a map value. The entry's process is new, or has ended (its counts
                // sent with its exit event), or is this one, let go by a selector and taken
                // in again (a rename back): then its counts go on. Userspace writes the
                // start in whole clock ticks of 10 ms, the kernel side exactly.
                unsafe {
                    let same = (*c).tgid == tgid && start_ns.wrapping_sub((*c).start_ns) < TICK_NS;
                    if !same {
                        *c = ProcCalls {
                            calls: 0,
                            errors: 0,
                            start_ns,
                            tgid,
                            _pad: 0,
                        }
                    }
                };
            }
            // SAFETY: a map value; the whole entry is written at once.
            unsafe {
                *p = TargetEntry {
                    tgid,
                    slot1: slot + 1,
                    flags,
                    index: i,
                }
            };
            true
        }
        None => false,
    }
}

/// Counts a finished call (and its failure) for the process whose [`TARGETS`] entry was at
/// index `proc1 - 1` when the call began, if that entry is still the calling process's
/// (a process a selector let go may have had its entry given to another since; a live
/// process's id is not reused, so its id says so).
#[inline(always)]
pub fn count_proc_call(proc1: u32, tgid: u32, failed: bool) {
    if let Some(c) = PROC_CALLS.get_ptr_mut(proc1.wrapping_sub(1))
        // SAFETY: a map value, valid while the program runs.
        && unsafe { (*c).tgid } == tgid
    {
        // SAFETY: map value fields; the adds are atomic (threads of one process on other
        // CPUs add to the same entry).
        unsafe {
            atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*c).calls, 1);
            if failed {
                atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*c).errors, 1);
            }
        }
    }
}

/// The own counts of process `tgid`, if it is in the filter.
#[inline(always)]
pub fn proc_calls(tgid: u32) -> Option<ProcCalls> {
    let p = table::find(&TARGETS, tgid)?;
    // SAFETY: a map value, valid while the program runs.
    let i = unsafe { (*p).index };
    PROC_CALLS.get(i).copied().filter(|c| c.tgid == tgid)
}

/// Counts something the kernel side failed to record, so that userspace can show it.
#[inline(always)]
pub fn count_drop(kind: Drop) {
    if let Some(p) = DROPS.get_ptr_mut(kind as u32) {
        // SAFETY: a per-CPU slot; programs on one CPU do not run concurrently.
        unsafe { *p += 1 };
    }
}

/// Threads found not traced, each by the address of its syscall `pt_regs`, which sits at the
/// top of the thread's kernel stack and is the first argument of the `sys_enter` and
/// `sys_exit` tracepoints: so the syscall hooks can tell an untraced thread without a helper
/// call (bpf_stats here, over an empty program: 10-14 ns per hook for the helper and the
/// lookup, 0-4 ns for this).
/// Direct-mapped by the stack's 16 KiB window; a collision evicts, and the evicted thread
/// takes the full check again. Sound because a live thread's stack is its own: an entry can
/// only go stale once its thread has ended and a new task is given that stack, and
/// [`task_new`] clears those slots before the new task first runs.
const UNTRACED_SLOTS: usize = 8192;
/// Slots a stack can cover: kernel stacks are at most 64 KiB (x86_64: 16 KiB, 32 KiB with
/// KASAN), and `pt_regs` lies somewhere inside the stack.
const STACK_WINDOWS: u64 = 4;
const WINDOW_SHIFT: u32 = 14;

#[unsafe(no_mangle)]
static mut UNTRACED: [u64; UNTRACED_SLOTS] = [0; UNTRACED_SLOTS];

/// The cache's generation: an entry holds `regs ^ generation`, so that bumping it (when a
/// live process turns traced, see [`forget_untraced`]) empties the whole cache at once. An
/// entry cleared to 0 never matches: `regs` is a kernel address, the generation small.
#[unsafe(no_mangle)]
static mut UNTRACED_GEN: u64 = 1;

#[inline(always)]
fn generation() -> u64 {
    // SAFETY: an aligned u64 in .bss; stores are whole words.
    unsafe { core::ptr::read_volatile(&raw const UNTRACED_GEN) }
}

/// Empties the cache of untraced threads: a live process has just joined the filter (a
/// selector took it in), and its threads may be in the cache. The rule: a thread is in the
/// cache only while its process is not traced; whatever makes a live process traced calls
/// this (a new process needs not: `task_new` clears its stack's slots).
#[inline(always)]
pub fn forget_untraced() {
    // SAFETY: the .bss word; the add is atomic, so concurrent bumps all count.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut UNTRACED_GEN, 1) };
}

#[inline(always)]
fn untraced_slot(addr: u64) -> usize {
    (addr >> WINDOW_SHIFT) as usize & (UNTRACED_SLOTS - 1)
}

/// Stores `value` in the slot of the window holding `addr`.
#[inline(always)]
fn set_slot(addr: u64, value: u64) {
    // SAFETY: an aligned u64 in .bss, the index masked into range; stores are whole words.
    unsafe { core::ptr::write_volatile(&raw mut UNTRACED[untraced_slot(addr)], value) }
}

/// Whether the thread whose syscall registers are at `regs` was found untraced before.
#[inline(always)]
pub fn known_untraced(regs: u64) -> bool {
    // SAFETY: an aligned u64 in .bss, the index masked into range; stores are whole words.
    unsafe {
        core::ptr::read_volatile(&raw const UNTRACED[untraced_slot(regs)]) == regs ^ generation()
    }
}

/// Remembers that the running thread, whose syscall registers are at `regs`, is not traced.
#[inline(always)]
pub fn mark_untraced(regs: u64) {
    set_slot(regs, regs ^ generation());
}

/// The filter's generation: bumped whenever a live traced process changes in the filter
/// (a selector lets it go, its image changes at an exec, it turns out to make 32-bit
/// calls), so that what the syscall hooks noted of it for its threads is looked up again.
/// Entries of new processes need no bump: their threads have noted nothing yet.
#[unsafe(no_mangle)]
static mut TARGETS_GEN: u64 = 1;

#[inline(always)]
pub fn targets_generation() -> u32 {
    // SAFETY: an aligned u64 in .bss; stores are whole words.
    unsafe { core::ptr::read_volatile(&raw const TARGETS_GEN) as u32 }
}

#[inline(always)]
pub fn targets_changed() {
    // SAFETY: the .bss word; the add is atomic, so concurrent bumps all count.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut TARGETS_GEN, 1) };
}

/// Beside it, for traced threads: the index in `THREADS` of the entry their last syscall
/// used, + 1 (0: none), by the same windows, so that `sys_exit` finds the entry without a
/// helper call or a search, and `sys_enter` without a search (see `syscalls::own_entry`:
/// the entry's own `regs` say whether it is still the thread's). One word: no torn reads.
#[unsafe(no_mangle)]
static mut ENTRY_AT: [u32; UNTRACED_SLOTS] = [0; UNTRACED_SLOTS];

/// The index noted for `regs`' window (`u32::MAX` when none: no such index).
#[inline(always)]
pub fn noted_entry(regs: u64) -> u32 {
    // SAFETY: an aligned u32 in .bss, the index masked into range; stores are whole words.
    unsafe { core::ptr::read_volatile(&raw const ENTRY_AT[untraced_slot(regs)]) }.wrapping_sub(1)
}

/// Notes `index` as the entry of the thread whose registers are at `regs`.
#[inline(always)]
pub fn note_entry(regs: u64, index: u32) {
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(&raw mut ENTRY_AT[untraced_slot(regs)], index + 1) }
}

/// Every new task, before it can run: forget whatever an ended task left under the new
/// task's stack and ids, so that nothing of another process is ever counted as its.
/// - the untraced-thread cache's slots of the kernel stack it was given, and the syscall
///   hooks' notes of entries there;
/// - the per-thread state of its thread id (a traced thread that died inside a syscall left
///   it "in a call", which the new task's first `sys_exit` would count);
/// - for a new process, the filter's entry of its id (a traced process that has ended
///   stays in the filter for its late threads' exits, see `life::proc_exit`); with
///   `--follow`, `life::proc_fork` sets it again just after, for a traced parent's child.
///
/// Attached first, with every section.
/// TP_PROTO(struct task_struct *task, u64 clone_flags)
#[raw_tracepoint(tracepoint = "task_newtask")]
pub fn task_new(ctx: RawTracePointContext) -> i32 {
    clear_new_task(ctx.arg(0))
}

/// [`task_new`] again, for the runs the kernel skips (see `crate::twin`): clearing twice
/// is clearing.
#[raw_tracepoint(tracepoint = "task_newtask")]
pub fn task_new2(ctx: RawTracePointContext) -> i32 {
    clear_new_task(ctx.arg(0))
}

#[inline(always)]
fn clear_new_task(task: u64) -> i32 {
    let Some(stack) = read_at::<u64>(task, offsets().task_stack) else {
        // Not expected: the task is being created. Counted, so that it shows.
        count_drop(Drop::TaskStackUnreadable);
        return 0;
    };
    for w in 0..STACK_WINDOWS {
        let addr = stack + (w << WINDOW_SHIFT);
        set_slot(addr, 0);
        // SAFETY: as in `note_entry`.
        unsafe { core::ptr::write_volatile(&raw mut ENTRY_AT[untraced_slot(addr)], 0) };
    }
    if let Some((tid, tgid)) = task_ids(task) {
        syscalls::forget(tid);
        sched::forget(tid);
        if tid == tgid
            && let Some(p) = table::find(&TARGETS, tgid)
        {
            // SAFETY: a map value; the task has not run yet.
            unsafe { *p = TargetEntry::default() };
        }
    }
    0
}
