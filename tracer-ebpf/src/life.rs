//! Process life: fork (threads and children; with --follow, children join the filter here,
//! before they first run), exec, exit, and signals sent to traced processes. Rare events:
//! each goes through the ring buffer.
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use tracer_common::event::{self, Kind};

use crate::{
    events::{offsets, read_at, submit, task_ids},
    filter::{TARGETS, target_slot},
    sched, syscalls,
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
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn proc_fork(ctx: RawTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    let Some(slot) = target_slot(tgid) else {
        return 0;
    };
    let Some((child_tid, child_tgid)) = task_ids(ctx.arg(1)) else {
        return 0;
    };
    let mut followed = 0;
    // SAFETY: a global in .rodata.
    if child_tgid != tgid && unsafe { core::ptr::read_volatile(&FOLLOW) } != 0 {
        if let Some(p) = TARGETS.get_ptr_mut(child_tgid) {
            // SAFETY: a map value; the child has not run yet.
            unsafe { *p = slot + 1 };
            followed = 1;
        }
    }
    let data = event::Fork {
        child_tid,
        child_tgid,
        followed,
        _pad: 0,
    };
    submit(Kind::Fork, slot, now(), tid, tgid, data);
    0
}

/// TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm); current is p.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn proc_exec(ctx: RawTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    let Some(slot) = target_slot(tgid) else {
        return 0;
    };
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

/// TP_PROTO(struct task_struct *p, bool group_dead); current is p.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn proc_exit(ctx: RawTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    let Some(slot) = target_slot(tgid) else {
        return 0;
    };
    let task: u64 = ctx.arg(0);
    let group_dead: u64 = ctx.arg(1);
    let group_dead = (group_dead & 0xff != 0) as u32;
    let exit_code = read_at::<u32>(task, offsets().task_exit_code).unwrap_or(0);
    sched::mark_dead(tid);
    if group_dead != 0 {
        // The process is gone: its id may be reused by a process nobody asked to trace.
        if let Some(p) = TARGETS.get_ptr_mut(tgid) {
            // SAFETY: a map value.
            unsafe { *p = 0 };
        }
    }
    submit(
        Kind::Exit,
        slot,
        now(),
        tid,
        tgid,
        event::Exit {
            exit_code,
            group_dead,
        },
    );
    0
}

/// TP_PROTO(int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
///          int result); current is the sender.
#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn signal_generate(ctx: RawTracePointContext) -> i32 {
    let Some((tid, tgid)) = task_ids(ctx.arg(2)) else {
        return 0;
    };
    let Some(slot) = target_slot(tgid) else {
        return 0;
    };
    let sig: u64 = ctx.arg(0);
    let result: u64 = ctx.arg(4);
    let sender_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let data = event::Signal {
        sig: sig as u32,
        sender_tgid,
        result: result as u32,
        _pad: 0,
    };
    submit(Kind::Signal, slot, now(), tid, tgid, data);
    0
}
