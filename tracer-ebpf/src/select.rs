//! Selectors: processes taken into the filter by their name (`--comm`) or their cgroup
//! (`--cgroup`), now and whenever one execs or moves later, so that a service restarted by
//! its supervisor is traced from its first instruction. Userspace takes in those that
//! match when tracing starts; these hooks, the rest. Each selector has its slot: the
//! processes it takes in are counted together.
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use tracer_common::{
    Drop, SelectConfig,
    target_flags::{BY_CGROUP, BY_COMM},
};

use crate::{
    events::{offsets, read_at, rodata, task_ids},
    filter::{count_drop, forget_untraced, set_target, target},
};

/// Set by userspace at load time.
#[unsafe(no_mangle)]
static SELECT: SelectConfig = SelectConfig {
    comms: [[0; 16]; tracer_common::MAX_SELECTORS],
    comm_slots: [0; tracer_common::MAX_SELECTORS],
    n_comms: 0,
    n_cgroups: 0,
    cgroups: [0; tracer_common::MAX_SELECTORS],
    cgroup_slots: [0; tracer_common::MAX_SELECTORS],
};

/// Takes `tgid` in under `slot` (`how`: the selector's flag), unless it is traced already
/// (by a `--pid`, a launch, a follow, another selector: those keep their slot). Its threads
/// may sit in the syscall hooks' cache of untraced threads: the cache is emptied.
#[inline(always)]
fn take_in(tgid: u32, slot: u32, how: u32) {
    if target(tgid).is_some() {
        return;
    }
    if set_target(tgid, slot, how) {
        forget_untraced();
    } else {
        count_drop(Drop::ThreadTableFull);
    }
}

/// A process a selector of kind `how` took in, and which no longer matches it, leaves the
/// filter (what it did so far stays counted).
#[inline(always)]
fn let_go(tgid: u32, how: u32) {
    if let Some(t) = target(tgid) {
        // SAFETY: a map value, valid while the program runs.
        unsafe {
            if (*t).flags & how != 0 {
                (*t).slot1 = 0;
            }
        }
    }
}

/// TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm); current is p,
/// with its new name. Attached before the life section's hook on the same tracepoint, so
/// that the exec of a process taken in here is reported.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn select_exec(_ctx: RawTracePointContext) -> i32 {
    match_exec()
}

/// [`select_exec`] again, for the runs the kernel skips (see `crate::twin`): taking a
/// process in twice, or letting it go twice, is doing it once.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn select_exec2(_ctx: RawTracePointContext) -> i32 {
    match_exec()
}

#[inline(always)]
fn match_exec() -> i32 {
    let c = rodata(&SELECT);
    if c.n_comms == 0 {
        return 0;
    }
    let Ok(comm) = bpf_get_current_comm() else {
        return 0;
    };
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    match first(c.n_comms, |i| c.comms[i] == comm) {
        Some(i) => take_in(tgid, c.comm_slots[i], BY_COMM),
        None => let_go(tgid, BY_COMM),
    }
    0
}

/// The first of the `n` selectors of a kind that `matches`.
#[inline(always)]
fn first(n: u32, matches: impl Fn(usize) -> bool) -> Option<usize> {
    (0..tracer_common::MAX_SELECTORS).find(|&i| (i as u32) < n && matches(i))
}

/// TP_PROTO(struct cgroup *dst_cgrp, const char *path, struct task_struct *task,
/// bool threadgroup): `task` (with its whole process when `threadgroup`) moves to
/// `dst_cgrp`, as a supervisor puts a service it starts into the service's cgroup.
#[raw_tracepoint(tracepoint = "cgroup_attach_task")]
pub fn select_cgroup(ctx: RawTracePointContext) -> i32 {
    match_cgroup(&ctx)
}

/// [`select_cgroup`] again, for the runs the kernel skips (see `crate::twin`).
#[raw_tracepoint(tracepoint = "cgroup_attach_task")]
pub fn select_cgroup2(ctx: RawTracePointContext) -> i32 {
    match_cgroup(&ctx)
}

#[inline(always)]
fn match_cgroup(ctx: &RawTracePointContext) -> i32 {
    let c = rodata(&SELECT);
    if c.n_cgroups == 0 {
        return 0;
    }
    let cgrp: u64 = ctx.arg(0);
    let task: u64 = ctx.arg(2);
    let o = offsets();
    let Some(id) = read_at::<u64>(cgrp, o.cgroup_kn).and_then(|kn| read_at::<u64>(kn, o.kernfs_id))
    else {
        return 0;
    };
    let Some((_, tgid)) = task_ids(task) else {
        return 0;
    };
    match first(c.n_cgroups, |i| c.cgroups[i] == id) {
        Some(i) => take_in(tgid, c.cgroup_slots[i], BY_CGROUP),
        None => let_go(tgid, BY_CGROUP),
    }
    0
}
