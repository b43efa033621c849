//! Event loops (see `tracer_common::loops`): the syscall hooks call in here only for the
//! waits of traced threads (their entry and return) and, for a thread known to loop
//! (`call_status::LOOPER`), at the return of its other calls. Nothing else pays: with
//! `LOOP_CONFIG.enabled == 0` (in .rodata) the verifier removes the calls.
use aya_ebpf::{
    bindings::BPF_ANY,
    helpers::{bpf_get_current_comm, bpf_get_current_task, bpf_ktime_get_ns},
    macros::map,
    maps::{LruHashMap, PerCpuArray},
};
use tracer_common::{
    event::{Kind, Stall},
    hist,
    loops::{LoopConfig, LoopState, MAX_LOOPS},
};

use crate::events::{hist_slot, offsets, read_at, rodata, submit};

#[unsafe(no_mangle)]
static LOOP_CONFIG: LoopConfig = LoopConfig {
    enabled: 0,
    _pad: 0,
    stall_ns: 0,
};

/// Loop threads by tid (an LRU: a thread gone is forgotten in time, without a hook).
#[map(name = "LOOPS")]
static LOOP_STATE: LruHashMap<u32, LoopState> = LruHashMap::with_max_entries(MAX_LOOPS, 0);

/// A zeroed `LoopState`, what a new entry is inserted from (too large for the stack).
#[map(name = "LOOP_ZERO")]
static LOOP_ZERO: PerCpuArray<LoopState> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
pub fn enabled() -> bool {
    rodata(&LOOP_CONFIG).enabled != 0
}

/// The running thread's on-CPU and run-queue time as the scheduler accounts them.
#[inline(always)]
fn task_times() -> (u64, u64) {
    let o = offsets();
    if o.task_exec_runtime == 0 {
        return (0, 0);
    }
    // SAFETY: returns the running task; read only through bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() };
    (
        read_at::<u64>(task, o.task_exec_runtime).unwrap_or(0),
        read_at::<u64>(task, o.task_run_delay).unwrap_or(0),
    )
}

/// Thread `tid`'s entry, made if missing (or if its id was another process's).
#[inline(always)]
fn entry(tid: u32, tgid: u32, slot: u32) -> Option<&'static mut LoopState> {
    if let Some(p) = LOOP_STATE.get_ptr_mut(&tid) {
        // SAFETY: a map value, valid while the program runs; only its thread writes it.
        let s = unsafe { &mut *p };
        if s.tgid == tgid {
            return Some(s);
        }
    }
    let zero = LOOP_ZERO.get_ptr(0)?;
    // SAFETY: a map value; the insert copies it.
    LOOP_STATE
        .insert(&tid, unsafe { &*zero }, BPF_ANY as u64)
        .ok()?;
    let p = LOOP_STATE.get_ptr_mut(&tid)?;
    // SAFETY: as above.
    let s = unsafe { &mut *p };
    s.tgid = tgid;
    s.slot = slot;
    Some(s)
}

/// A traced thread enters a wait: the iteration since its previous wait returned ends.
/// Out of line: waits only.
#[inline(never)]
pub fn wait_enter(tid: u32, tgid: u32, slot: u32) {
    let Some(p) = LOOP_STATE.get_ptr_mut(&tid) else {
        return; // its first wait: no iteration yet
    };
    // SAFETY: a map value; only its thread writes it.
    let s = unsafe { &mut *p };
    if s.tgid != tgid || s.since_ns == 0 {
        return;
    }
    // SAFETY: reading the monotonic clock has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let busy = now.saturating_sub(s.since_ns);
    s.iterations += 1;
    s.busy_ns += busy;
    if busy > s.busy_max_ns {
        s.busy_max_ns = busy;
    }
    if let Some(b) = hist_slot(&mut s.hist, hist::bucket(busy)) {
        *b += 1;
    }
    // A thread shows it loops by its second iteration: before, it may have waited once
    // only (Rust's runtime polls the standard descriptors at start), and its first
    // "iteration" is all it did since.
    let stall_ns = rodata(&LOOP_CONFIG).stall_ns;
    if stall_ns != 0 && busy >= stall_ns && s.iterations > 1 {
        s.stalls += 1;
        let (cpu, delay) = task_times();
        submit(
            Kind::Stall,
            slot,
            now,
            tid,
            tgid,
            Stall {
                busy_ns: busy,
                on_cpu_ns: cpu.saturating_sub(s.cpu_at_ns),
                runq_ns: delay.saturating_sub(s.delay_at_ns),
                calls: s.calls,
                slow_nr: s.slow_nr,
                slow_ns: s.slow_ns,
                comm: bpf_get_current_comm().unwrap_or([0; 16]),
            },
        );
    }
    s.since_ns = 0;
}

/// A traced thread's wait returns: an iteration begins. Out of line: waits only.
#[inline(never)]
pub fn wait_exit(tid: u32, tgid: u32, slot: u32) {
    let Some(s) = entry(tid, tgid, slot) else {
        return;
    };
    let (cpu, delay) = task_times();
    s.cpu_at_ns = cpu;
    s.delay_at_ns = delay;
    s.calls = 0;
    s.slow_nr = 0;
    s.slow_ns = 0;
    // SAFETY: reading the monotonic clock has no preconditions.
    s.since_ns = unsafe { bpf_ktime_get_ns() };
}

/// Another call of a loop thread returned, after `dur` ns (0 if not timed). Out of line:
/// loop threads only.
#[inline(never)]
pub fn call_done(tid: u32, nr: u32, dur: u64) {
    let Some(p) = LOOP_STATE.get_ptr_mut(&tid) else {
        return;
    };
    // SAFETY: a map value; only its thread writes it.
    let s = unsafe { &mut *p };
    if s.since_ns == 0 {
        return;
    }
    s.calls += 1;
    if dur > s.slow_ns {
        s.slow_ns = dur;
        s.slow_nr = nr;
    }
}

/// Thread `tid` exec'd: what its old program's loop did is not the new one's. Rare.
#[inline(never)]
pub fn forget(tid: u32) {
    let _ = LOOP_STATE.remove(&tid);
}
