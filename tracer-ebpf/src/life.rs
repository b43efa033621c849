//! Process life: fork (threads and children; with --follow, children join the filter here,
//! before they first run), exec, exit, and signals sent to traced processes. Rare events:
//! each goes through the ring buffer.
use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::{map, raw_tracepoint},
    maps::LruHashMap,
    programs::RawTracePointContext,
};
use tracer_common::{
    Drop, ProcCalls,
    event::{self, Kind},
    target_flags,
};

use crate::{
    events::{offsets, read_at, submit, task_ids},
    filter::{count_drop, proc_calls, set_target, target, target_slot},
    sched, syscalls,
    twin::{Key, Twin},
};

/// 1 to trace children of traced processes (`--follow`); set by userspace.
#[unsafe(no_mangle)]
static FOLLOW: u32 = 0;

#[inline(always)]
fn now() -> u64 {
    // SAFETY: reading the monotonic clock has no preconditions.
    unsafe { bpf_ktime_get_ns() }
}

/// TP_PROTO(struct task_struct *parent, struct task_struct *child); current is the parent.
/// With `--follow`, a traced process's child joins the filter here, before it first runs
/// (`filter::task_new` has just cleared its entry).
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn proc_fork(ctx: RawTracePointContext) -> i32 {
    fork(&ctx, Twin::First)
}

/// [`proc_fork`] again, for the runs the kernel skips (see [`crate::twin`]).
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn proc_fork2(ctx: RawTracePointContext) -> i32 {
    fork(&ctx, Twin::Second)
}

#[inline(always)]
fn fork(ctx: &RawTracePointContext, twin: Twin) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    let Some(parent) = target(tgid) else {
        return 0;
    };
    // SAFETY: a map value, valid while the program runs.
    let (slot, flags) = unsafe { ((*parent).slot1 - 1, (*parent).flags) };
    let child: u64 = ctx.arg(1);
    let Some((child_tid, child_tgid)) = task_ids(child) else {
        return 0;
    };
    if !twin.handles(Key::new(tid, Kind::Fork, child_tid, 0)) {
        return 0;
    }
    let mut followed = 0;
    let child_start_ns = read_at::<u64>(child, offsets().task_start_boottime).unwrap_or(0);
    // Children of a process a selector took in are in its cgroup, or have its name and
    // program.
    // SAFETY: a global in .rodata.
    let follow = unsafe { core::ptr::read_volatile(&FOLLOW) } != 0
        || flags & (target_flags::BY_COMM | target_flags::BY_CGROUP | target_flags::BY_EXE) != 0;
    if child_tgid != tgid && follow {
        if set_target(child_tgid, slot, flags, child_start_ns) {
            followed = 1;
        } else {
            count_drop(Drop::ThreadTableFull);
        }
    }
    let data = event::Fork {
        child_tid,
        child_tgid,
        followed,
        _pad: 0,
        child_start_ns,
    };
    submit(Kind::Fork, slot, now(), tid, tgid, data);
    0
}

/// TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm); current is p.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn proc_exec(ctx: RawTracePointContext) -> i32 {
    exec(&ctx, Twin::First)
}

/// [`proc_exec`] again, for the runs the kernel skips (see [`crate::twin`]).
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn proc_exec2(ctx: RawTracePointContext) -> i32 {
    exec(&ctx, Twin::Second)
}

#[inline(always)]
fn exec(ctx: &RawTracePointContext, twin: Twin) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    let Some(slot) = target_slot(tgid) else {
        return 0;
    };
    if !twin.handles(Key::new(tid, Kind::Exec, 0, 0)) {
        return 0;
    }
    let old: u64 = ctx.arg(1);
    let old_tid = old as u32;
    if old_tid != tid {
        // A non-leader thread exec'd and took the leader's id: its old id is gone.
        syscalls::forget(old_tid);
        sched::forget(old_tid);
    }
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    submit(
        Kind::Exec,
        slot,
        now(),
        tid,
        tgid,
        event::Exec {
            old_tid,
            _pad: 0,
            comm,
        },
    );
    0
}

/// TP_PROTO(struct task_struct *p, bool group_dead) from Linux 6.16, TP_PROTO(struct
/// task_struct *p) before (see [`group_dead`]); current is p. The process stays in the
/// filter after its end: its other threads' exits may still come (before 6.16 a thread's
/// exit shows after its joiner has been woken, which can be after the process's last
/// thread ended), and its id can be reused only once they all have, by a new task that
/// `filter::task_new` sees first. It is marked ended (`target_flags::ENDED`): a new
/// process whose set of entries is full takes its entry.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn proc_exit(ctx: RawTracePointContext) -> i32 {
    exit(&ctx, Twin::First)
}

/// [`proc_exit`] again, for the runs the kernel skips (see [`crate::twin`]).
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn proc_exit2(ctx: RawTracePointContext) -> i32 {
    exit(&ctx, Twin::Second)
}

#[inline(always)]
fn exit(ctx: &RawTracePointContext, twin: Twin) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    let Some(slot) = target_slot(tgid) else {
        // A thread of a process that left the filter may still hold an entry: it is
        // vacated here, as no other thread may take it (see `syscalls::look_up`).
        syscalls::forget(tid);
        return 0;
    };
    if !twin.handles(Key::new(tid, Kind::Exit, 0, 0)) {
        return 0;
    }
    let task: u64 = ctx.arg(0);
    let exit_code = read_at::<u32>(task, offsets().task_exit_code).unwrap_or(0);
    sched::mark_dead(tid);
    // A thread killed inside a syscall left its entry "in a call"; no call of it follows.
    syscalls::forget(tid);
    let group_dead = group_dead(ctx, task, tgid);
    // Its final own counts leave with the event, read before it is marked ended: from
    // then on its entry may be given to another process.
    let own = if group_dead {
        proc_calls(tgid).unwrap_or_default()
    } else {
        ProcCalls::default()
    };
    if group_dead && let Some(t) = target(tgid) {
        // SAFETY: a map value; no thread of the process runs syscalls any more.
        unsafe { (*t).flags |= target_flags::ENDED };
    }
    submit(
        Kind::Exit,
        slot,
        now(),
        tid,
        tgid,
        event::Exit {
            exit_code,
            group_dead: group_dead as u32,
            calls: own.calls,
            errors: own.errors,
            start_ns: own.start_ns,
        },
    );
    0
}

/// A process, by its id and its leader's start time (ids are reused, the pair is not).
#[repr(C)]
struct ProcessKey {
    tgid: u32,
    _pad: u32,
    start_ns: u64,
}

/// Processes whose end has been reported, for kernels whose `sched_process_exit` does not
/// say (see [`group_dead`]). Least recently used entries make room: a process's threads
/// all exit within moments of each other. Keyed by start time too, so a reused id is a
/// new process.
#[map(name = "EXITS_SEEN")]
static EXITS_SEEN: LruHashMap<ProcessKey, u32> = LruHashMap::with_max_entries(256, 0);

/// Whether the exiting thread ends its process. From Linux 6.16 the tracepoint says so.
/// Before, every thread that exits once the process's count of live threads
/// (`signal->live`, decremented before the tracepoint) is 0 could be the last; the first
/// of them to insert the process into [`EXITS_SEEN`] (an atomic insert) is reported as
/// such, so a process ends once.
#[inline(always)]
fn group_dead(ctx: &RawTracePointContext, task: u64, tgid: u32) -> bool {
    let o = offsets();
    if o.exit_has_group_dead != 0 {
        let group_dead: u64 = ctx.arg(1);
        return group_dead & 0xff != 0;
    }
    let live = read_at::<u64>(task, o.task_signal).and_then(|s| read_at::<u32>(s, o.signal_live));
    if live != Some(0) {
        return false;
    }
    let start_ns = read_at::<u64>(task, o.task_group_leader)
        .and_then(|leader| read_at::<u64>(leader, o.task_start_time))
        .unwrap_or(0);
    let key = ProcessKey {
        tgid,
        _pad: 0,
        start_ns,
    };
    EXITS_SEEN.insert(&key, &1, BPF_NOEXIST as u64).is_ok()
}

/// TP_PROTO(int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
///          int result); current is the sender, when a process sent it.
#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn proc_signal(ctx: RawTracePointContext) -> i32 {
    signal(&ctx, Twin::First)
}

/// [`proc_signal`] again, for the runs the kernel skips (see [`crate::twin`]).
#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn proc_signal2(ctx: RawTracePointContext) -> i32 {
    signal(&ctx, Twin::Second)
}

#[inline(always)]
fn signal(ctx: &RawTracePointContext, twin: Twin) -> i32 {
    let Some((tid, tgid)) = task_ids(ctx.arg(2)) else {
        return 0;
    };
    let Some(slot) = target_slot(tgid) else {
        return 0;
    };
    let sig: u64 = ctx.arg(0);
    let result: u64 = ctx.arg(4);
    let sender = bpf_get_current_pid_tgid();
    // The sender's thread: a signal sent from an interrupt between the two programs of
    // another has the same sender, a different signal or target.
    if !twin.handles(Key::new(sender as u32, Kind::Signal, tid, sig as u32)) {
        return 0;
    }
    let sender_tgid = (sender >> 32) as u32;
    let info: u64 = ctx.arg(1);
    let from_kernel = from_kernel(info) as u32;
    let ts = now();
    let data = event::Signal {
        sig: sig as u32,
        sender_tgid,
        result: result as u32,
        from_kernel,
    };
    submit(Kind::Signal, slot, ts, tid, tgid, data);
    if event::is_crash_signal(sig as u32) {
        let task: u64 = ctx.arg(2);
        let o = offsets();
        let (code, addr) = match info {
            0 => (event::SI_USER, 0),
            1 => (event::SI_KERNEL, 0),
            _ => (
                read_at::<i32>(info, o.siginfo_code).unwrap_or(event::SI_USER),
                read_at::<u64>(info, o.siginfo_fields).unwrap_or(0),
            ),
        };
        // The registers are the thread's own only when it signalled itself (a fault,
        // abort's tgkill): another thread's may be stale, or in use on another CPU.
        let ip = if sender as u32 == tid {
            user_ip(task)
        } else {
            0
        };
        let crash = event::Crash {
            sig: sig as u32,
            code,
            addr,
            ip,
            sender_tgid,
            from_kernel,
            comm: read_at::<[u8; 16]>(task, o.task_comm).unwrap_or([0; 16]),
        };
        submit(Kind::Crash, slot, ts, tid, tgid, crash);
    }
    0
}

/// The user instruction pointer of a thread in the kernel: its `pt_regs` lie at the top of
/// its kernel stack (`task_pt_regs`), which is 16 KiB on x86_64 (32 KiB with KASAN), below
/// 16 bytes of padding with FRED. Neither is in BTF, so each place is tried, and the one
/// whose segment registers are user ones (`__USER_CS` or `__USER32_CS`, and `__USER_DS`)
/// is taken. 0 if none is.
#[inline(always)]
fn user_ip(task: u64) -> u64 {
    const USER_CS: u64 = 0x33;
    const USER32_CS: u64 = 0x23;
    const USER_DS: u64 = 0x2b;
    let o = offsets();
    if o.regs_size == 0 {
        return 0; // not in this kernel's BTF
    }
    let Some(stack) = read_at::<u64>(task, o.task_stack) else {
        return 0;
    };
    for top in [16 << 10, (16 << 10) - 16, 32 << 10, (32 << 10) - 16] {
        let regs = stack + top - o.regs_size as u64;
        let cs = read_at::<u64>(regs, o.regs_cs).unwrap_or(0) & 0xffff;
        let ss = read_at::<u64>(regs, o.regs_ss).unwrap_or(0) & 0xffff;
        if (cs == USER_CS || cs == USER32_CS) && ss == USER_DS {
            return read_at::<u64>(regs, o.regs_ip).unwrap_or(0);
        }
    }
    0
}

/// Whether the kernel generated a signal, from its `info`: `SEND_SIG_NOINFO` (0) is a
/// process's plain send, `SEND_SIG_PRIV` (1) the kernel's (the OOM killer's SIGKILL);
/// otherwise `si_code`: `SI_USER`, `SI_QUEUE` and `SI_TKILL` are sent by a process
/// (kill, sigqueue, tgkill), every other code (a fault, a child's end, a timer, I/O) by the
/// kernel.
#[inline(always)]
fn from_kernel(info: u64) -> bool {
    const SI_USER: i32 = 0;
    const SI_QUEUE: i32 = -1;
    const SI_TKILL: i32 = -6;
    match info {
        0 => false,
        1 => true,
        _ => !matches!(
            read_at::<i32>(info, offsets().siginfo_code),
            Some(SI_USER | SI_QUEUE | SI_TKILL)
        ),
    }
}
