//! OOM kills anywhere on the machine (raw tracepoint `mark_victim`, no tracefs needed):
//! the victim's ids, name, RSS and memory cgroup, and whether it is a traced process.
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
        bpf_probe_read_kernel_str_bytes,
    },
    macros::{map, raw_tracepoint},
    maps::LruHashMap,
    programs::RawTracePointContext,
};
use tracer_common::event::{Kind, OomKill, UNTRACED_SLOT};

use crate::{
    events::{offsets, read_at, submit, task_ids},
    filter::target_slot,
    memory::mm_counter,
};

const SIGKILL: u32 = 9;

/// Tasks sent SIGKILL lately, by thread id: where `mark_victim` gives only the victim's
/// pid, its task is the one the OOM killer has just sent SIGKILL to.
#[map(name = "SIGKILLED")]
static SIGKILLED: LruHashMap<u32, u64> = LruHashMap::with_max_entries(64, 0);

/// `TP_PROTO(struct task_struct *task, uid_t uid)`; `TP_PROTO(int pid)` on Linux 5.x (see
/// [`victim_task`]).
#[raw_tracepoint(tracepoint = "mark_victim")]
pub fn mark_victim(ctx: RawTracePointContext) -> i32 {
    let Some(task) = victim_task(&ctx) else {
        return 0;
    };
    let Some((tid, tgid)) = task_ids(task) else {
        return 0;
    };
    let o = offsets();
    let slot = target_slot(tgid);
    let page = o.page_size as u64;
    let mut ev = OomKill {
        anon_rss: 0,
        file_rss: 0,
        shmem_rss: 0,
        swap: 0,
        total_vm: 0,
        cgroup_id: 0,
        traced: slot.is_some() as u32,
        _pad: 0,
        comm: read_at::<[u8; 16]>(task, o.task_comm).unwrap_or([0; 16]),
        cgroup_name: [0; 64],
    };
    if let Some(mm) = read_at::<u64>(task, o.task_mm)
        && mm != 0
    {
        ev.anon_rss = mm_counter(mm, &o, o.mm_anon) * page;
        ev.file_rss = mm_counter(mm, &o, o.mm_file) * page;
        ev.shmem_rss = mm_counter(mm, &o, o.mm_shmem) * page;
        ev.swap = mm_counter(mm, &o, o.mm_swap) * page;
        ev.total_vm = read_at::<u64>(mm, o.mm_total_vm).unwrap_or(0) * page;
    }
    // task->cgroups->subsys[memory_cgrp_id]->cgroup->kn
    let kn = read_at::<u64>(task, o.task_cgroups)
        .and_then(|cset| read_at::<u64>(cset, o.css_set_subsys + 8 * o.memory_cgrp_id))
        .and_then(|css| read_at::<u64>(css, o.css_cgroup))
        .and_then(|cg| read_at::<u64>(cg, o.cgroup_kn));
    if let Some(kn) = kn
        && kn != 0
    {
        ev.cgroup_id = read_at::<u64>(kn, o.kernfs_id).unwrap_or(0);
        if let Some(name) = read_at::<u64>(kn, o.kernfs_name) {
            // SAFETY: the helper checks the address and bounds the copy to the buffer.
            let _ =
                unsafe { bpf_probe_read_kernel_str_bytes(name as *const u8, &mut ev.cgroup_name) };
        }
    }
    let ts = unsafe { bpf_ktime_get_ns() };
    submit(
        Kind::OomKill,
        slot.unwrap_or(UNTRACED_SLOT),
        ts,
        tid,
        tgid,
        ev,
    );
    0
}

/// The victim's `task_struct`. Where the tracepoint passes only its pid: the running task
/// when the OOM killer picked the allocating task itself (it sends no signal then), else
/// the task it sent SIGKILL to just before (recorded by [`oom_sigkill`]; that fresh entry
/// replaced any older one for the same pid).
#[inline(always)]
fn victim_task(ctx: &RawTracePointContext) -> Option<u64> {
    if offsets().oom_victim_is_pid == 0 {
        return Some(ctx.arg(0));
    }
    let pid = ctx.arg::<u64>(0) as u32;
    if bpf_get_current_pid_tgid() as u32 == pid {
        // SAFETY: returns the running task; read only through bpf_probe_read_kernel.
        return Some(unsafe { bpf_get_current_task() });
    }
    // SAFETY: the value is copied at once; it is read only through bpf_probe_read_kernel.
    let task = unsafe { SIGKILLED.get(&pid) }.copied();
    let _ = SIGKILLED.remove(&pid);
    task
}

/// `signal_generate`, attached with the memory section only where `mark_victim` passes a
/// pid: remembers the tasks sent SIGKILL. TP_PROTO(int sig, struct kernel_siginfo *info,
/// struct task_struct *task, int group, int result).
#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn oom_sigkill(ctx: RawTracePointContext) -> i32 {
    if ctx.arg::<u64>(0) as u32 != SIGKILL {
        return 0;
    }
    let task: u64 = ctx.arg(2);
    if let Some(tid) = read_at::<u32>(task, offsets().task_pid) {
        // Full: the least recently used entry makes room.
        let _ = SIGKILLED.insert(&tid, &task, 0);
    }
    0
}
