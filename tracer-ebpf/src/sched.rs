//! Scheduling: context switches, run-queue latency, on-CPU / runnable / blocked time.
//!
//! A per-thread state machine (`THREAD_SCHED`, a table by tid of inlined array lookups, see
//! `table.rs`) records what each traced thread is doing and since when:
//!   switch-out: RUNNING -> BLOCKED (voluntary) or RUNNABLE (involuntary); on-CPU time closes
//!   wakeup:     BLOCKED -> RUNNABLE; blocked time closes
//!   switch-in:  RUNNABLE -> RUNNING; the run-queue wait closes (into the histogram)
//! Closed intervals are added to the thread's counters (`THREAD_STATS`) and its process's
//! per-CPU totals (`SCHED_STATS`); userspace adds the open interval when it reads.
//! `sched_switch` runs on every context switch of the machine: for untraced threads it costs
//! one helper call, one kernel read (next's ids) and up to sixteen inlined array lookups
//! (a set of THREAD_SCHED and of TARGETS, for prev and next).
use aya_ebpf::{
    bindings::{BPF_EXIST, BPF_NOEXIST},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns,
        bpf_probe_read_kernel_str_bytes,
    },
    macros::{map, raw_tracepoint},
    maps::{Array, HashMap, PerCpuArray},
    programs::RawTracePointContext,
};
use tracer_common::{
    Drop, MAX_TARGETS, SchedStats, ThreadSched, block_cause, hist,
    sched_state::{BLOCKED, DEAD, RUNNABLE, RUNNING, UNKNOWN},
    thread_flags,
};

use crate::{
    events::{hist_slot, offsets, read_at, task_ids},
    filter::{count_drop, target_slot},
    syscalls, table,
};

/// A table by tid (see [`table`]); sized by userspace.
#[map(name = "THREAD_SCHED")]
pub static THREAD_SCHED: Array<ThreadSched> = Array::with_max_entries(1, 0);

/// Per-thread counters, kept only with `--threads` ([`PER_THREAD`]). Preallocated here;
/// from Linux 6.1 userspace loads it allocated by use (`probes::by_use`): before, a tracing
/// program's insert into such a map allocates with `GFP_ATOMIC` (5.x warns with a stack
/// trace, PREEMPT_RT refuses). Sized by userspace, to 1 entry when unused.
#[map(name = "THREAD_STATS")]
static THREAD_STATS: HashMap<u32, SchedStats> = HashMap::with_max_entries(1, 0);

/// Indexed by target slot.
#[map(name = "SCHED_STATS")]
static SCHED_STATS: PerCpuArray<SchedStats> = PerCpuArray::with_max_entries(MAX_TARGETS, 0);

/// 1 to keep each thread's own counters (`--threads`); set by userspace. Without it a
/// traced switch makes no hash-map lookup.
#[unsafe(no_mangle)]
static PER_THREAD: u32 = 0;

/// All zeros: the initial value of a thread's counters (too large for the 512-byte stack).
#[map(name = "SCHED_ZERO")]
static SCHED_ZERO: Array<SchedStats> = Array::with_max_entries(1, 0);

/// A closed interval to add to the counters.
#[derive(Default)]
struct Delta {
    voluntary: u64,
    involuntary: u64,
    on_cpu_ns: u64,
    runq_ns: u64,
    blocked_ns: u64,
    /// A measured run-queue wait (from wakeup or preemption), for the histogram.
    runq_wait: Option<u64>,
    /// What `blocked_ns` was spent waiting in ([`block_cause`]).
    cause: u32,
    /// A condition wait begins on this futex word (0: none).
    cond_addr: u64,
}

/// Adds `d` to counters; `bucket` is the histogram bucket of `d.runq_wait`.
#[inline(always)]
fn add(s: &mut SchedStats, d: &Delta, bucket: usize) {
    s.voluntary += d.voluntary;
    s.involuntary += d.involuntary;
    s.on_cpu_ns += d.on_cpu_ns;
    s.runq_ns += d.runq_ns;
    s.blocked_ns += d.blocked_ns;
    if d.blocked_ns != 0
        && let Some(b) = hist_slot(&mut s.blocked_by, d.cause as usize)
    {
        *b += d.blocked_ns;
    }
    if let Some(w) = d.runq_wait {
        s.runq_count += 1;
        if w > s.runq_max_ns {
            s.runq_max_ns = w;
        }
        if let Some(b) = hist_slot(&mut s.runq_hist, bucket) {
            *b += 1;
        }
    }
}

/// Adds `d` to the process totals of `slot` and to the thread's own counters. `current`:
/// the thread is the running task, so its name, not yet recorded, is one helper call away
/// (later names come from [`task_rename`]; reading the name at every switch-out cost about
/// a fifth of this program's run time). `flags`: the thread's `ThreadSched::flags`.
#[inline(always)]
fn apply(d: &Delta, slot: u32, tid: u32, tgid: u32, current: bool, flags: &mut u32) {
    let bucket = d.runq_wait.map_or(0, hist::bucket);
    if let Some(p) = SCHED_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU value; programs on one CPU do not run concurrently.
        add(unsafe { &mut *p }, d, bucket);
    }
    // SAFETY: a global in .rodata.
    if unsafe { core::ptr::read_volatile(&PER_THREAD) } == 0 {
        return;
    }
    let stats = match THREAD_STATS.get_ptr_mut(&tid) {
        // SAFETY: a map value, valid while the program runs.
        Some(p) if unsafe { (*p).tgid } == tgid => p,
        // None, or the entry of an ended thread of another process that had this id (not
        // yet reclaimed by userspace): this thread's counters start at zero.
        found => {
            let Some(zero) = SCHED_ZERO.get(0) else {
                return;
            };
            let how = if found.is_some() {
                BPF_EXIST
            } else {
                BPF_NOEXIST
            };
            if THREAD_STATS.insert(&tid, zero, how as u64).is_err() {
                // Counted once per thread, not per switch.
                if *flags & thread_flags::STATS_FULL == 0 {
                    *flags |= thread_flags::STATS_FULL;
                    count_drop(Drop::ThreadStatsFull);
                }
                return;
            }
            let Some(p) = THREAD_STATS.get_ptr_mut(&tid) else {
                return;
            };
            // SAFETY: the entry was just created; only this thread's events write it.
            unsafe {
                (*p).slot = slot;
                (*p).tgid = tgid;
            }
            p
        }
    };
    // SAFETY: a thread's events are serialized by the scheduler (its runqueue lock).
    let stats = unsafe { &mut *stats };
    add(stats, d, bucket);
    // A condition wait ends: its word is the latest one recorded (before `d`'s, of the
    // wait that begins now, replaces it).
    if d.cause == block_cause::CONDITION && d.blocked_ns > stats.pool_wait_ns {
        stats.pool_wait_ns = d.blocked_ns;
        stats.pool_addr = stats.cond_addr;
    }
    if d.cond_addr != 0 {
        stats.cond_addr = d.cond_addr;
    }
    if current
        && stats.comm[0] == 0
        && let Ok(c) = bpf_get_current_comm()
    {
        stats.comm = c;
    }
}

/// The state of a thread if its process is traced, registering it on first sight.
#[inline(always)]
pub fn tracked(tid: u32, tgid: u32) -> Option<&'static mut ThreadSched> {
    // A dead thread's entry is free too: its final switch-out, which frees it, can go
    // unseen (sched_switch misses a few), and with a large pid_max its id is not reused
    // for long.
    let Some(p) = table::find_or_free(&THREAD_SCHED, tid, |e| e.slot1 == 0 || e.state == DEAD)
    else {
        if target_slot(tgid).is_some() {
            count_drop(Drop::ThreadTableFull);
        }
        return None;
    };
    // SAFETY: a map value; see `apply` for why updates of one thread do not race.
    let t = unsafe { &mut *p };
    if t.tid != tid || t.slot1 == 0 {
        let slot = target_slot(tgid)?;
        *t = ThreadSched {
            tid,
            slot1: slot + 1,
            state: UNKNOWN,
            flags: 0,
            since_ns: 0,
            cause: block_cause::UNKNOWN,
            _pad: 0,
        };
    }
    Some(t)
}

/// TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next,
///          unsigned int prev_state); `prev_state` from Linux 5.18 (see [`voluntary`]);
/// current is still `prev`.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch(ctx: RawTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let prev_tid = pid_tgid as u32;
    let prev = if prev_tid != 0 {
        tracked(prev_tid, (pid_tgid >> 32) as u32)
    } else {
        None
    };
    let next_task: u64 = ctx.arg(2);
    let (next_tid, next_tgid, next) = match task_ids(next_task) {
        Some((tid, tgid)) if tid != 0 => (tid, tgid, tracked(tid, tgid)),
        _ => (0, 0, None),
    };
    if prev.is_none() && next.is_none() {
        return 0;
    }
    // SAFETY: reading the monotonic clock has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(t) = prev {
        let state = prev_state(&ctx);
        let voluntary = voluntary(&ctx, state);
        let why = if voluntary {
            syscalls::on_block(prev_tid, state, || now)
        } else {
            (block_cause::UNKNOWN, 0)
        };
        let last = state & TASK_DEAD != 0;
        let tgid = (pid_tgid >> 32) as u32;
        switch_out(t, prev_tid, tgid, now, voluntary, last, why);
    }
    if let Some(t) = next {
        switch_in(t, next_tid, next_tgid, now);
    }
    0
}

/// Whether the switch in `sched_switch`'s context is the previous task blocking (as the
/// kernel counts nvcsw: not preempted, and not runnable). The state is the tracepoint's
/// `prev_state` from Linux 5.18, the task's own before (where a blocking task with a
/// signal pending has been made runnable again by then: involuntary here, nvcsw for the
/// kernel).
#[inline(always)]
pub fn voluntary(ctx: &RawTracePointContext, prev_state: u32) -> bool {
    let preempt: u64 = ctx.arg(0);
    preempt & 0xff == 0 && prev_state != 0
}

/// The kernel's `TASK_DEAD`: set in the state of a task at its very last switch-out.
const TASK_DEAD: u32 = 0x80;

/// The previous task's state at the switch: the tracepoint's `prev_state` from Linux 5.18,
/// the task's own before.
#[inline(always)]
pub fn prev_state(ctx: &RawTracePointContext) -> u32 {
    let o = offsets();
    if o.switch_has_prev_state != 0 {
        ctx.arg::<u64>(3) as u32
    } else {
        read_at::<u32>(ctx.arg(1), o.task_state).unwrap_or(0)
    }
}

/// `last`: the thread's very last switch-out (its state is `TASK_DEAD`). Only that one
/// frees its entry: an exiting thread (`DEAD`, marked at `sched_process_exit`) may still
/// block or be preempted on its way out (closing its files, say), and run again. `why`:
/// what a blocking thread waits in, and the futex word of a condition wait.
#[inline(always)]
fn switch_out(
    t: &mut ThreadSched,
    tid: u32,
    tgid: u32,
    now: u64,
    voluntary: bool,
    last: bool,
    why: (u32, u64),
) {
    let (cause, cond_addr) = why;
    let slot = t.slot1 - 1;
    let mut d = Delta {
        cause: t.cause,
        cond_addr,
        ..Default::default()
    };
    if t.since_ns != 0 {
        let spent = now - t.since_ns;
        match t.state {
            RUNNING | DEAD => d.on_cpu_ns = spent,
            // A wakeup or a switch-in went unseen (before the hooks were attached, or a
            // switch the kernel did not report): the time is given to the last state
            // known, so that a thread's on-CPU, run-queue and blocked times still add up
            // to its time in the window.
            BLOCKED => d.blocked_ns = spent,
            RUNNABLE => d.runq_ns = spent,
            _ => {}
        }
    }
    if last {
        apply(&d, slot, tid, tgid, true, &mut t.flags);
        // Its last switch: close the books and free the tid for its next owner.
        *t = ThreadSched::default();
        return;
    }
    if voluntary {
        d.voluntary = 1;
    } else {
        d.involuntary = 1;
    }
    // An exiting thread stays marked as such until its last switch.
    if t.state != DEAD {
        t.state = if voluntary { BLOCKED } else { RUNNABLE };
    }
    t.cause = cause;
    t.since_ns = now;
    apply(&d, slot, tid, tgid, true, &mut t.flags);
}

#[inline(always)]
fn switch_in(t: &mut ThreadSched, tid: u32, tgid: u32, now: u64) {
    let mut d = Delta {
        cause: t.cause,
        ..Default::default()
    };
    if t.since_ns != 0 {
        let waited = now - t.since_ns;
        match t.state {
            RUNNABLE => {
                d.runq_ns = waited;
                d.runq_wait = Some(waited);
            }
            // Woken without a wakeup we saw (e.g. a signal kept it on the runqueue).
            BLOCKED => d.blocked_ns = waited,
            // Guessed RUNNING from /proc at start: it was in fact waiting for a CPU.
            RUNNING => d.runq_ns = waited,
            _ => {}
        }
    }
    if t.state != DEAD {
        t.state = RUNNING;
    }
    t.since_ns = now;
    apply(&d, t.slot1 - 1, tid, tgid, false, &mut t.flags);
}

/// TP_PROTO(struct task_struct *task, const char *comm): a thread is renamed (prctl
/// PR_SET_NAME, a write to /proc/<tid>/comm, or exec); `comm` is the new name, copied into
/// the task (truncated to 15 bytes) just after this runs. Rare: no hot path.
#[raw_tracepoint(tracepoint = "task_rename")]
pub fn task_rename(ctx: RawTracePointContext) -> i32 {
    let Some((tid, tgid)) = task_ids(ctx.arg(0)) else {
        return 0;
    };
    if target_slot(tgid).is_none() {
        return 0;
    }
    // A thread not seen yet reads its name at its first switch-out.
    if let Some(p) = THREAD_STATS.get_ptr_mut(&tid) {
        let mut comm = [0u8; 16];
        let name: *const u8 = ctx.arg(1);
        // SAFETY: the helper checks the address and stops at 15 bytes and a NUL; the entry
        // belongs to a traced thread of `tgid`.
        unsafe {
            if (*p).tgid == tgid && bpf_probe_read_kernel_str_bytes(name, &mut comm).is_ok() {
                (*p).comm = comm;
            }
        }
    }
    0
}

/// TP_PROTO(struct task_struct *p)
#[raw_tracepoint(tracepoint = "sched_wakeup")]
pub fn sched_wakeup(ctx: RawTracePointContext) -> i32 {
    wakeup(ctx.arg(0), false);
    0
}

/// TP_PROTO(struct task_struct *p): a new thread or process, runnable for the first time.
#[raw_tracepoint(tracepoint = "sched_wakeup_new")]
pub fn sched_wake_new(ctx: RawTracePointContext) -> i32 {
    wakeup(ctx.arg(0), true);
    0
}

#[inline(always)]
fn wakeup(task: u64, new: bool) {
    let Some((tid, tgid)) = task_ids(task) else {
        return;
    };
    if tid == 0 {
        return;
    }
    let Some(t) = tracked(tid, tgid) else { return };
    // A wakeup can race with a thread that has not switched out yet: a RUNNING thread
    // stays RUNNING.
    if !(new || t.state == BLOCKED || t.state == UNKNOWN) {
        return;
    }
    // SAFETY: reading the monotonic clock has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if t.state == BLOCKED && t.since_ns != 0 {
        let d = Delta {
            blocked_ns: now - t.since_ns,
            cause: t.cause,
            ..Default::default()
        };
        apply(&d, t.slot1 - 1, tid, tgid, false, &mut t.flags);
    }
    t.state = RUNNABLE;
    t.since_ns = now;
}

/// Marks a thread as exiting; its final switch-out closes its accounts.
#[inline(always)]
pub fn mark_dead(tid: u32) {
    if let Some(p) = table::find(&THREAD_SCHED, tid) {
        // SAFETY: the exiting thread is running this program.
        let t = unsafe { &mut *p };
        if t.slot1 != 0 {
            t.state = DEAD;
        }
    }
}

/// Forgets the state of a thread id: one that disappeared without exiting (a non-leader
/// thread's exec), or given to a new task.
#[inline(always)]
pub fn forget(tid: u32) {
    if let Some(p) = table::find(&THREAD_SCHED, tid) {
        // SAFETY: no task runs under that tid now (gone, or not started yet).
        unsafe { *p = ThreadSched::default() };
    }
}
