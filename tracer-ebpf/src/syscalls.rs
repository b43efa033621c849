//! Syscall enter/exit on raw tracepoints (cheaper than the classic `raw_syscalls`
//! tracepoints: no record is built). Entry stores the start time and the aggregate index
//! in the thread's entry of `THREADS`; exit folds the duration into the per-CPU aggregate
//! of that (process, syscall). Hot path: a load and a compare to leave for untraced
//! threads seen before (see [`crate::filter::known_untraced`]; the rest is a BPF-to-BPF
//! call away, see [`enter`]). A traced thread's entry is found by its syscall registers'
//! address (a load, one inlined array lookup and a compare, see [`own_entry`]), with what
//! its previous call noted of its ids and its process while the filter is unchanged
//! (`filter::targets_generation`): no helper call and no table search at entry or exit
//! for a thread's second call on. Then jiffies (inlined), and two clock reads for the
//! calls that are timed (see [`SyscallTiming`]: the clock is the dearest part, so busy
//! threads are sampled). Measured with bpf_stats on `dd bs=1` (3 runs each, ns per run
//! including the stats' own two clock reads): sys_enter 100-109 -> 79-88, sys_exit about
//! 74-83 -> 70-79.
use core::ffi::c_void;

use aya_ebpf::{
    EbpfContext,
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_jiffies64, bpf_ktime_get_ns},
    macros::{map, raw_tracepoint},
    maps::{Array, PerCpuArray, PerCpuHashMap},
    programs::RawTracePointContext,
};
use tracer_common::{
    COMPAT_IDX, COMPAT_ROWS, Drop, ErrnoKey, FEW_TIMED, MAX_TARGETS, SYSCALL_OTHER, SYSCALL_SLOTS,
    SyscallStats, SyscallTiming, TIF_ADDR32, TS_COMPAT, ThreadState, block_cause,
    call_status::{BLOCKED, FORCED, IN_CALL, LOOPER, STREAMED, WAIT},
    hist,
    target_flags::COMPAT,
};

use crate::{
    events::{hist_slot, offsets, read_at, rodata},
    filter::{
        count_drop, count_proc_call, known_untraced, mark_untraced, note_entry, noted_entry,
        target, target_slot, targets_changed, targets_generation,
    },
    loops, memory, sched, stream, table, threads,
};

/// Set by userspace at load time; in .rodata, so with `every == 1` the verifier removes
/// the sampling code.
#[unsafe(no_mangle)]
static TIMING: SyscallTiming = SyscallTiming::EXACT;

/// A table by tid (see [`table`]); sized by userspace.
#[map(name = "THREADS")]
static THREADS: Array<ThreadState> = Array::with_max_entries(1, 0);

/// Indexed by `slot * SYSCALL_SLOTS + nr`; sized by userspace to the number of targets.
#[map(name = "SYSCALL_STATS")]
static SYSCALL_STATS: PerCpuArray<SyscallStats> = PerCpuArray::with_max_entries(1, 0);

/// The same for 32-bit syscalls, keyed by `COMPAT_IDX | slot * SYSCALL_SLOTS + nr`: rows
/// exist only for what 32-bit callers use (a hash lookup, only for their calls).
#[map(name = "COMPAT_STATS")]
static COMPAT_STATS: PerCpuHashMap<u32, SyscallStats> =
    PerCpuHashMap::with_max_entries(COMPAT_ROWS, 0);

/// One zeroed `SyscallStats`, what a new `COMPAT_STATS` row is inserted from.
#[map(name = "COMPAT_ZERO")]
static COMPAT_ZERO: PerCpuArray<SyscallStats> = PerCpuArray::with_max_entries(1, 0);

/// Failed calls per (process, syscall, errno). Touched only when a call fails.
#[map(name = "ERRNOS")]
static ERRNOS: PerCpuHashMap<ErrnoKey, u64> = PerCpuHashMap::with_max_entries(8192, 0);

/// Calls timed so far per (process, syscall), up to [`FEW_TIMED`], indexed like
/// `SYSCALL_STATS`: a sampled-out call is timed anyway while its row has fewer. In .bss, so
/// the check is a load and a compare; shared by all CPUs (a lost increment only times one
/// more call).
const TIMED_ROWS: usize = (MAX_TARGETS * SYSCALL_SLOTS) as usize;
#[unsafe(no_mangle)]
static mut TIMED_FEW: [u8; TIMED_ROWS] = [0; TIMED_ROWS];

#[inline(always)]
fn timed_few(idx: u32) -> *mut u8 {
    // SAFETY: the index is masked into the array (its length is a power of two).
    unsafe {
        (&raw mut TIMED_FEW)
            .cast::<u8>()
            .add(idx as usize & (TIMED_ROWS - 1))
    }
}

/// The entry of [`THREADS`] the thread whose syscall registers are at `regs` used last, if
/// it is still that thread's: its `regs` are these (a live thread's kernel stack, which
/// holds them, is its own; `task_new` forgets what a new task's stack was noted for).
#[inline(always)]
pub fn own_entry(regs: u64) -> Option<*mut ThreadState> {
    let p = THREADS.get_ptr_mut(noted_entry(regs))?;
    // SAFETY: a map value, valid while the program runs.
    (unsafe { (*p).regs } == regs).then_some(p)
}

/// `exit` and `exit_group` never return: like `strace -c`, they are not counted, and not
/// recording them keeps a dead thread's slot clean for the next owner of its tid. x86_64
/// numbers, then i386's.
const NR_EXIT: u32 = 60;
const NR_EXIT_GROUP: u32 = 231;
const NR32_EXIT: u32 = 1;
const NR32_EXIT_GROUP: u32 = 252;

/// Whether the running syscall came in through the 32-bit entry (`int 0x80`, `sysenter`,
/// a 32-bit `syscall`): its number is then an i386 one. The kernel sets `TS_COMPAT` in the
/// thread's `thread_info.status` for the call. Two helper calls: about 58 ns here (each
/// helper call costs about 20 ns on this machine, the kernel read more), so it is not
/// asked of every call (see `enter`).
#[inline(always)]
fn in_compat_syscall() -> bool {
    // SAFETY: returns the running task; read only through bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() };
    read_at::<u32>(task, offsets().task_ti_status).is_some_and(|s| s & TS_COMPAT != 0)
}
const MAX_ERRNO: i64 = 4095;

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    // TP_PROTO(struct pt_regs *regs, long id)
    if known_untraced(ctx.arg(0)) {
        return 0;
    }
    // The descriptor scan is tail-called from here: the kernel takes a tail call from a
    // BPF-to-BPF function only with the program's BTF, which tracer does not load.
    if enter(ctx.as_ptr()) == SCAN_FDS {
        memory::scan_fds(&ctx);
    }
    0
}

/// What [`enter`] returns when the call needs the memory section's descriptor scan.
const SCAN_FDS: i32 = 1;

/// sys_enter past the untraced-thread cache. Out of line (a BPF-to-BPF call), so that the
/// cache hit above, which every untraced thread takes, uses no callee-saved register and no
/// stack: its JIT prologue is as short as an empty program's. Measured by perf sampling an
/// untraced dd (share of its time in BPF programs, 3 runs each): floor 1.2%, inline 2.3%,
/// out of line 1.85%; a traced dd pays for the call: 14.8% to 15.3% (8 runs each).
#[inline(never)]
fn enter(ctx: *mut c_void) -> i32 {
    let ctx = RawTracePointContext::new(ctx);
    let regs: u64 = ctx.arg(0);
    let generation = targets_generation();
    // The entry this thread's previous call used, with what it noted of the thread and its
    // process, while no traced process has changed since; else looked up.
    let state = match own_entry(regs).filter(|p| unsafe { (**p).generation } == generation) {
        Some(p) => p,
        None => match look_up(regs, generation) {
            Some(p) => p,
            None => return 0,
        },
    };
    // SAFETY: only this thread writes its own entry (no other takes an entry with an
    // owner), and it is on this CPU now.
    let s = unsafe { &mut *state };
    let (tid, tgid, slot, target_flags, proc1) = (s.tid, s.tgid, s.slot, s.target_flags, s.proc1);
    let id: u64 = ctx.arg(1);
    let nr = if id < SYSCALL_SLOTS as u64 {
        id as u32
    } else {
        SYSCALL_OTHER
    };
    let timing = rodata(&TIMING);
    let every = timing.every;
    let (tick, in_tick, rng, timed, forced) = if every == 1 {
        (0, 0, 0, true, false)
    } else {
        // SAFETY: reading jiffies has no preconditions (the verifier inlines it).
        let tick = unsafe { bpf_jiffies64() } as u32;
        let n = if s.tick == tick { s.in_tick + 1 } else { 1 };
        // xorshift32, seeded from the tid and the tick.
        let mut r = if s.rng == 0 {
            tid.wrapping_mul(0x9e37_79b9) ^ tick | 1
        } else {
            s.rng
        };
        r ^= r << 13;
        r ^= r >> 17;
        r ^= r << 5;
        let sampled = n <= timing.budget || r & (every - 1) == 0;
        // SAFETY: an in-bounds byte of .bss; a racy read is harmless.
        let forced = !sampled
            && unsafe { core::ptr::read_volatile(timed_few(slot * SYSCALL_SLOTS + nr)) }
                < FEW_TIMED;
        (tick, n, r, sampled || forced, forced)
    };
    // Which table the number belongs to: asked of every call of a process known to make
    // 32-bit calls, and of the others' calls within their tick's budget (every call with
    // --exact-latency), not of the sampled ones beyond: the check is two helper calls, and
    // a 64-bit process's first 32-bit call within a budget flags it (see
    // `target_flags::COMPAT`).
    let compat = (target_flags & COMPAT != 0 || in_tick <= timing.budget) && in_compat_syscall();
    if compat && target_flags & COMPAT == 0 {
        flag_compat(tgid);
    }
    let (abi, exit, exit_group) = if compat {
        (COMPAT_IDX, NR32_EXIT, NR32_EXIT_GROUP)
    } else {
        (0, NR_EXIT, NR_EXIT_GROUP)
    };
    if nr == exit || nr == exit_group {
        return 0;
    }
    // Removed by the verifier when loops are not followed (LOOP_CONFIG is in .rodata).
    let wait = loops::enabled() && !compat && tracer_common::loops::is_wait(nr);
    if wait {
        loops::wait_enter(tid, tgid, slot);
    }
    let kept = s.status & LOOPER | if wait { WAIT } else { 0 };
    *s = ThreadState {
        tid,
        tgid,
        regs,
        slot,
        target_flags,
        generation,
        proc1,
        // SAFETY: reading the monotonic clock has no preconditions.
        start_ns: if timed {
            unsafe { bpf_ktime_get_ns() }
        } else {
            0
        },
        stats_idx: abi | (slot * SYSCALL_SLOTS + nr),
        flags: 0,
        tick,
        in_tick,
        rng,
        status: kept | if forced { IN_CALL | FORCED } else { IN_CALL },
    };
    // Removed by the verifier when the stream is off (STREAM is in .rodata).
    if stream::enabled()
        && stream::noted_at_entry(id, compat)
        && stream::on_enter(regs, id, compat, u64::from(tgid) << 32 | u64::from(tid))
    {
        s.status |= STREAMED;
    }
    // Removed by the verifier when the memory section is off (MEMORY is in .rodata).
    if memory::enabled() && memory::needs_scan(id, compat) {
        return SCAN_FDS;
    }
    0
}

/// The running thread's entry, found the long way: its ids (a helper call), its process in
/// the filter, its entry (the one its previous call used, its own, or a vacant one), noted
/// by `regs` for its next calls with what they need of its process. None for an untraced
/// thread (remembered as such) and when its set is full (counted).
///
/// An entry with an owner is never taken, even between the owner's calls: without a
/// compare-and-swap (none before Linux 5.12) the owner, starting a call on another CPU at
/// that moment, and the taker would both write it, and a call of one of them would go
/// uncounted or be counted in the other's row. The soak lost one getppid in 46 million
/// that way, a child taking its parent's entry; a workload that forks 240 children whose
/// ids share the parent's set lost one in 2 runs of 40. Entries are vacated when their
/// thread exits, traced or not (`life::exit`), and when its id is given to a new task.
/// Left: two threads without an entry whose ids share a set (16384·k apart), making their
/// first calls at the same moment, can still both take the same vacant entry.
#[inline(always)]
fn look_up(regs: u64, generation: u32) -> Option<*mut ThreadState> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    let Some(target) = target(tgid) else {
        mark_untraced(regs);
        return None;
    };
    let state = match own_entry(regs).filter(|p| unsafe { (**p).tid } == tid) {
        Some(p) => p,
        None => {
            let i = table::find_or_free_index(&THREADS, tid, |e| e.tid == 0);
            let Some(p) = THREADS.get_ptr_mut(i) else {
                count_drop(Drop::ThreadTableFull);
                return None;
            };
            note_entry(regs, i);
            p
        }
    };
    // SAFETY: as in `enter`; `target` is a map value, valid while the program runs.
    unsafe {
        let s = &mut *state;
        if s.tid != tid {
            // A vacant entry: the sampling state a previous owner left is not this
            // thread's. The rest `enter` writes. (Field by field: a struct update of this
            // size becomes a call of a byte-loop memset, which old verifiers walk byte by
            // byte.)
            s.tid = tid;
            s.tick = 0;
            s.in_tick = 0;
            s.rng = 0;
            s.status = 0;
        }
        s.tgid = tgid;
        s.regs = regs;
        s.slot = (*target).slot1 - 1;
        s.target_flags = (*target).flags;
        s.proc1 = (*target).index + 1;
        s.generation = generation;
    }
    Some(state)
}

/// Notes that process `tgid` makes 32-bit calls (see `target_flags::COMPAT`). Out of line:
/// once per process.
#[inline(never)]
fn flag_compat(tgid: u32) {
    if let Some(t) = target(tgid) {
        // SAFETY: a map value; a lost race with another thread sets the same bit.
        unsafe { (*t).flags |= COMPAT };
        targets_changed();
    }
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    // TP_PROTO(struct pt_regs *regs, long ret)
    if known_untraced(ctx.arg(0)) {
        return 0;
    }
    exit(ctx.as_ptr())
}

/// sys_exit past the untraced-thread cache, out of line as [`enter`] is.
#[inline(never)]
fn exit(ctx: *mut c_void) -> i32 {
    let ctx = RawTracePointContext::new(ctx);
    // The entry sys_enter used, found by the registers' address (no helper call, no
    // search); else by the thread's id.
    let state = match own_entry(ctx.arg(0)) {
        Some(p) => p,
        None => match table::find(&THREADS, bpf_get_current_pid_tgid() as u32) {
            Some(p) => p,
            None => return 0,
        },
    };
    // SAFETY: as in sys_enter, the slot belongs to the running thread.
    let (start, idx, flags, status, in_tick, proc1, tgid, tid) = unsafe {
        let s = &mut *state;
        if s.status & IN_CALL == 0 {
            // Untraced thread, or a call that began before tracer attached.
            return 0;
        }
        let r = (
            s.start_ns,
            s.stats_idx,
            s.flags,
            s.status,
            s.in_tick,
            s.proc1,
            s.tgid,
            s.tid,
        );
        s.status &= LOOPER;
        r
    };
    // TP_PROTO(struct pt_regs *regs, long ret)
    let ret: i64 = ctx.arg(1);
    let stats = if idx & COMPAT_IDX == 0 {
        SYSCALL_STATS.get_ptr_mut(idx)
    } else {
        compat_row(idx)
    };
    let Some(stats) = stats else {
        return 0;
    };
    // SAFETY: per-CPU value; programs on one CPU do not run concurrently.
    let s = unsafe { &mut *stats };
    s.calls += 1;
    let mut dur = 0;
    let mut weighted = 0;
    if start != 0 {
        dur = unsafe { bpf_ktime_get_ns() }.wrapping_sub(start);
        // How many calls this one stands for: itself within the tick's budget, when it
        // blocked (every blocking call is timed), and when timed for its row's first few;
        // beyond the budget, `every` calls.
        let timing = rodata(&TIMING);
        let weight = if status & (BLOCKED | FORCED) != 0 || in_tick <= timing.budget {
            1
        } else {
            timing.every
        };
        if timing.every != 1 {
            let few = timed_few(idx);
            // SAFETY: an in-bounds byte of .bss; a lost increment only times one more call.
            unsafe {
                let n = core::ptr::read_volatile(few);
                if n < FEW_TIMED {
                    core::ptr::write_volatile(few, n + 1);
                }
            }
        }
        s.timed += 1;
        weighted = dur * weight as u64;
        s.total_ns += weighted;
        if dur > s.max_ns {
            s.max_ns = dur;
        }
        if let Some(b) = hist_slot(&mut s.hist, hist::bucket(dur)) {
            *b += weight as u64;
        }
    }
    let failed = ret < 0 && ret >= -MAX_ERRNO;
    count_proc_call(proc1, tgid, failed);
    // Removed by the verifier without --threads (THREAD_CALLS_ON is in .rodata).
    if threads::enabled() {
        let nr = idx & (SYSCALL_SLOTS - 1);
        let row = if idx & COMPAT_IDX != 0 {
            SYSCALL_SLOTS + nr
        } else {
            nr
        };
        threads::count(tid, tgid, row, failed, weighted);
    }
    if failed {
        s.errors += 1;
        count_errno(ErrnoKey {
            stats_idx: idx,
            errno: (-ret) as u32,
        });
    }
    // Removed by the verifier when loops are not followed (LOOP_CONFIG is in .rodata).
    if loops::enabled() {
        if status & WAIT != 0 {
            loops::wait_exit(tid, tgid, idx / SYSCALL_SLOTS);
            // SAFETY: as above.
            unsafe { (*state).status |= LOOPER };
        } else if status & LOOPER != 0 {
            loops::call_done(tid, idx & (SYSCALL_SLOTS - 1), dur);
        }
    }
    if ret == 0 && memory::is_exec(idx) {
        // A new program: whether it loops is to be seen again.
        // SAFETY: as above.
        unsafe { (*state).status = 0 };
        if loops::enabled() {
            loops::forget(tid);
        }
        exec_done(tgid);
    }
    // Removed by the verifier when the memory section is off (MEMORY is in .rodata).
    if memory::enabled() {
        // TP_PROTO(struct pt_regs *regs, long ret)
        memory::on_sys_exit(ctx.arg(0), idx, ret, flags);
    }
    // Last, so that the aggregate path keeps nothing more live for it. Removed by the
    // verifier when the stream is off (STREAM is in .rodata).
    let noted = status & STREAMED != 0;
    if stream::enabled() && (noted || stream::unnoted_kept(failed)) {
        stream::on_exit(ctx.as_ptr(), idx, start, noted);
    }
    0
}

/// A traced process has exec'd: whether its new image is a 32-bit program (`TIF_ADDR32`)
/// says whether its calls are all to be asked for their table. Out of line: rare.
#[inline(never)]
fn exec_done(tgid: u32) {
    // SAFETY: returns the running task; read only through bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() };
    let Some(ti_flags) = read_at::<u64>(task, offsets().task_ti_flags) else {
        return;
    };
    if let Some(t) = target(tgid) {
        // SAFETY: a map value; the exec'd thread is the process's only one now.
        unsafe {
            if ti_flags & (1 << TIF_ADDR32) != 0 {
                (*t).flags |= COMPAT;
            } else {
                (*t).flags &= !COMPAT;
            }
        }
    }
    // What the syscall hooks noted of the process is out of date: its image (the flag
    // above), and the exec'ing thread's id if it was not the leader (it has the leader's
    // now).
    targets_changed();
}

/// 1 to attribute blocked time to its cause ([`globals::BLOCK_CAUSES`]); set by
/// userspace.
#[unsafe(no_mangle)]
static BLOCK_CAUSES: u32 = 0;

/// Each syscall's [`block_cause`], indexed like `memory::MEM_CLASS` (the i386 numbers
/// after the x86_64 ones); filled by userspace.
#[map(name = "BLOCK_CAUSE")]
static BLOCK_CAUSE: Array<u32> = Array::with_max_entries(2 * SYSCALL_SLOTS, 0);

/// The kernel's `TASK_UNINTERRUPTIBLE` state bit (a `D` in ps).
const TASK_UNINTERRUPTIBLE: u32 = 0x2;
/// futex's `FUTEX_WAIT_BITSET` operation, under `FUTEX_CMD_MASK`.
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_CMD_MASK: u64 = 0x7f;

/// A traced thread is about to block, in state `state`: if it is inside a syscall, that
/// call is timed (from now, unless it was sampled at entry), so that no slow blocking
/// call escapes the sampling. `now` is read only when needed. Returns what the thread
/// waits in ([`block_cause`]; `UNKNOWN` when causes are not kept), and for a condition
/// wait its futex word (else 0).
#[inline(always)]
pub fn on_block(tid: u32, state: u32, now: impl FnOnce() -> u64) -> (u32, u64) {
    let sampling = rodata(&TIMING).every != 1;
    // SAFETY: a global in .rodata.
    let causes = unsafe { core::ptr::read_volatile(&BLOCK_CAUSES) } != 0;
    if !sampling && !causes {
        return (block_cause::UNKNOWN, 0);
    }
    let outside = if causes {
        block_cause::NO_SYSCALL
    } else {
        block_cause::UNKNOWN
    };
    let Some(p) = table::find(&THREADS, tid) else {
        return (outside, 0);
    };
    // SAFETY: the blocking thread is the current task on this CPU.
    let s = unsafe { &mut *p };
    if s.status & IN_CALL == 0 {
        return (outside, 0);
    }
    if sampling {
        s.status |= BLOCKED;
        if s.start_ns == 0 {
            s.start_ns = now();
        }
    }
    if causes {
        cause_of(s.stats_idx, s.regs, state)
    } else {
        (block_cause::UNKNOWN, 0)
    }
}

/// What a thread blocking in state `state` inside the call of `stats_idx` waits in, and
/// for a condition wait its futex word. Out of line: only blocking switches take it.
#[inline(never)]
fn cause_of(stats_idx: u32, regs: u64, state: u32) -> (u32, u64) {
    if state & TASK_UNINTERRUPTIBLE != 0 {
        return (block_cause::UNINTERRUPTIBLE, 0);
    }
    let compat = stats_idx & COMPAT_IDX != 0;
    let nr = stats_idx & (SYSCALL_SLOTS - 1);
    let row = if compat { SYSCALL_SLOTS + nr } else { nr };
    let cause = BLOCK_CAUSE.get(row).copied().unwrap_or(block_cause::OTHER);
    if cause != block_cause::FUTEX {
        return (cause, 0);
    }
    // futex(uaddr, op, ...): the operation is the second argument, the word the first.
    let o = offsets();
    let (arg0, arg1) = if compat {
        (o.regs_compat_arg0, o.regs_compat_arg1)
    } else {
        (o.regs_arg0, o.regs_arg1)
    };
    match read_at::<u64>(regs, arg1) {
        Some(op) if op & FUTEX_CMD_MASK == FUTEX_WAIT_BITSET => (
            block_cause::CONDITION,
            read_at::<u64>(regs, arg0).unwrap_or(0),
        ),
        _ => (block_cause::LOCK, 0),
    }
}

/// sched_switch for `--sections syscalls` without `sched`: only [`on_block`].
/// TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next,
///          unsigned int prev_state) (see [`sched::voluntary`]); current is still `prev`.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sys_switch(ctx: RawTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    if target_slot((pid_tgid >> 32) as u32).is_none()
        || !sched::voluntary(&ctx, sched::prev_state(&ctx))
    {
        return 0;
    }
    // SAFETY: reading the monotonic clock has no preconditions.
    let _ = on_block(pid_tgid as u32, 0, || unsafe { bpf_ktime_get_ns() });
    0
}

/// Forgets the state of a thread id: one that disappeared without exiting (a non-leader
/// thread's exec), or given to a new task.
#[inline(always)]
pub fn forget(tid: u32) {
    if let Some(p) = table::find(&THREADS, tid) {
        // SAFETY: no task runs under that tid now (gone, or not started yet).
        unsafe { *p = ThreadState::default() };
    }
}

/// This CPU's `COMPAT_STATS` row of a 32-bit syscall, made on its first call. Out of line:
/// only 32-bit calls take it.
#[inline(never)]
fn compat_row(key: u32) -> Option<*mut SyscallStats> {
    if let Some(p) = COMPAT_STATS.get_ptr_mut(&key) {
        return Some(p);
    }
    let zero = COMPAT_ZERO.get_ptr(0)?;
    // SAFETY: a map value, valid while the program runs; the insert copies it.
    if COMPAT_STATS
        .insert(&key, unsafe { &*zero }, BPF_NOEXIST as u64)
        .is_err()
        && COMPAT_STATS.get_ptr_mut(&key).is_none()
    {
        count_drop(Drop::CompatRowsFull);
        return None;
    }
    COMPAT_STATS.get_ptr_mut(&key)
}

#[inline(always)]
fn count_errno(key: ErrnoKey) {
    if let Some(n) = ERRNOS.get_ptr_mut(&key) {
        // SAFETY: per-CPU value, see above.
        unsafe { *n += 1 };
    } else if ERRNOS.insert(&key, &1, BPF_NOEXIST as u64).is_err() {
        count_drop(Drop::ErrnoMapFull);
    }
}
