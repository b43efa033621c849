//! Selectors: processes taken into the filter by their name (`--comm`) or their cgroup
//! (`--cgroup`), now and whenever one execs or moves later, so that a service restarted by
//! its supervisor is traced from its first instruction. Userspace takes in those that
//! match when tracing starts; these hooks, the rest. Each selector has its slot: the
//! processes it takes in are counted together.
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
        bpf_probe_read_kernel_str_bytes,
    },
    macros::{map, raw_tracepoint},
    maps::{Array, PerCpuArray},
    programs::RawTracePointContext,
};
use tracer_common::{
    Drop, EXE_PATH_MAX, ExeMatch, MAX_EXES, SelectConfig,
    event::{Kind, Taken, taken_cause},
    target_flags::{BY_CGROUP, BY_COMM, BY_EXE},
};

use crate::{
    events::{offsets, process_start, read_at, rodata, submit, task_ids},
    filter::{count_drop, forget_untraced, set_target, target, targets_changed},
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
    n_exes: 0,
    _pad: 0,
};

/// The executables `--exe` selects; userspace keeps their inodes current.
#[map(name = "EXES")]
static EXES: Array<ExeMatch> = Array::with_max_entries(MAX_EXES, 0);

/// Where an exec's file name is read, per CPU (too large for the stack beside the rest).
#[map(name = "EXEC_NAME")]
static EXEC_NAME: PerCpuArray<[u64; EXE_PATH_MAX / 8]> = PerCpuArray::with_max_entries(1, 0);

/// Takes the process of `task` (thread `tid` of `tgid`) in under `slot` (`how`: the
/// selector's flag; `cause`: a `taken_cause`), unless it is traced already (by a `--pid`, a
/// launch, a follow, another selector: those keep their slot), and says so to userspace,
/// which then reads its /proc entry too. Its threads may sit in the syscall hooks' cache of
/// untraced threads: the cache is emptied.
#[inline(always)]
fn take_in(task: u64, tid: u32, tgid: u32, slot: u32, how: u32, cause: u32) {
    if target(tgid).is_some() {
        return;
    }
    let start_ns = process_start(task);
    if set_target(tgid, slot, how, start_ns) {
        forget_untraced();
        // SAFETY: reading the monotonic clock has no preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        submit(
            Kind::Taken,
            slot,
            now,
            tid,
            tgid,
            Taken {
                how,
                cause,
                start_ns,
            },
        );
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
                targets_changed();
            }
        }
    }
}

/// TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm); current is p,
/// with its new name. Attached before the life section's hook on the same tracepoint, so
/// that the exec of a process taken in here is reported.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn select_exec(ctx: RawTracePointContext) -> i32 {
    match_exec(&ctx)
}

/// [`select_exec`] again, for the runs the kernel skips (see `crate::twin`): taking a
/// process in twice, or letting it go twice, is doing it once.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn select_exec2(ctx: RawTracePointContext) -> i32 {
    match_exec(&ctx)
}

#[inline(always)]
fn match_exec(ctx: &RawTracePointContext) -> i32 {
    let c = rodata(&SELECT);
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    // SAFETY: returns the running task; read only through bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() };
    if c.n_comms != 0
        && let Ok(comm) = bpf_get_current_comm()
    {
        match first(c.n_comms, |i| c.comms[i] == comm) {
            Some(i) => take_in(task, tid, tgid, c.comm_slots[i], BY_COMM, taken_cause::NAME),
            None => let_go(tgid, BY_COMM),
        }
    }
    if c.n_exes != 0 {
        match exe_slot(ctx.arg(2), c.n_exes) {
            Some(slot) => take_in(task, tid, tgid, slot, BY_EXE, taken_cause::EXEC),
            None => let_go(tgid, BY_EXE),
        }
    }
    0
}

/// TP_PROTO(struct task_struct *task, const char *comm): a thread is renamed (prctl
/// PR_SET_NAME, a write to /proc/PID/comm, an exec); `comm` is the new name. Like pgrep,
/// `--comm` matches a process by its main thread's name: a process whose main thread takes
/// a selected name is taken in, one taking another name leaves. (At an exec this runs
/// before [`select_exec`], which then finds the process taken in or let go already.)
#[raw_tracepoint(tracepoint = "task_rename")]
pub fn select_rename(ctx: RawTracePointContext) -> i32 {
    match_rename(&ctx)
}

/// [`select_rename`] again, for the runs the kernel skips (see `crate::twin`).
#[raw_tracepoint(tracepoint = "task_rename")]
pub fn select_rename2(ctx: RawTracePointContext) -> i32 {
    match_rename(&ctx)
}

#[inline(always)]
fn match_rename(ctx: &RawTracePointContext) -> i32 {
    let c = rodata(&SELECT);
    if c.n_comms == 0 {
        return 0;
    }
    let task: u64 = ctx.arg(0);
    let Some((tid, tgid)) = task_ids(task) else {
        return 0;
    };
    if tid != tgid {
        return 0; // another thread's name: not the process's
    }
    let mut comm = [0u8; 16];
    let name: *const u8 = ctx.arg(1);
    // SAFETY: the helper checks the address and stops at 15 bytes and a NUL, as the
    // kernel truncates the name it stores.
    if unsafe { bpf_probe_read_kernel_str_bytes(name, &mut comm) }.is_err() {
        return 0;
    }
    match first(c.n_comms, |i| c.comms[i] == comm) {
        Some(i) => take_in(task, tid, tgid, c.comm_slots[i], BY_COMM, taken_cause::NAME),
        None => let_go(tgid, BY_COMM),
    }
    0
}

/// The slot of the first `--exe` entry the exec of `bprm` (a `struct linux_binprm *`)
/// matches: its file's inode and device, or the file name it was given. (Plain integers,
/// 0 when unread: Linux 5.10 and 6.1's verifiers refuse code that keeps an `Option` half
/// written on the stack.)
#[inline(always)]
fn exe_slot(bprm: u64, n: u32) -> Option<u32> {
    let o = offsets();
    let file = read_at::<u64>(bprm, o.bprm_file).unwrap_or(0);
    let inode = if file != 0 {
        read_at::<u64>(file, o.file_inode).unwrap_or(0)
    } else {
        0
    };
    let (ino, dev) = if inode != 0 {
        let sb = read_at::<u64>(inode, o.inode_sb).unwrap_or(0);
        (
            read_at::<u64>(inode, o.inode_ino).unwrap_or(0),
            if sb != 0 {
                read_at::<u32>(sb, o.sb_dev).unwrap_or(0)
            } else {
                0
            },
        )
    } else {
        (0, 0)
    };
    let name = EXEC_NAME.get_ptr_mut(0)?;
    // SAFETY: a per-CPU map value, this program's alone while it runs; zeroed first so
    // that the name is NUL-padded like the paths it is compared with.
    let name = unsafe { &mut *name };
    *name = [0; EXE_PATH_MAX / 8];
    let filename = read_at::<u64>(bprm, o.bprm_filename).unwrap_or(0);
    if filename != 0 {
        // SAFETY: the same bytes, seen as bytes; the helper checks the address it reads
        // and bounds the copy to the buffer.
        let bytes =
            unsafe { &mut *(name as *mut [u64; EXE_PATH_MAX / 8] as *mut [u8; EXE_PATH_MAX]) };
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(filename as *const u8, bytes) };
    }
    for i in 0..MAX_EXES {
        if i >= n {
            break;
        }
        let Some(e) = EXES.get(i) else { break };
        if (ino != 0 && e.ino == ino && e.dev == dev) || same_path(name, &e.path) {
            return Some(e.slot);
        }
    }
    None
}

/// Whether a NUL-padded file name is the NUL-padded `path` (8 bytes at a time).
#[inline(always)]
fn same_path(name: &[u64; EXE_PATH_MAX / 8], path: &[u8; EXE_PATH_MAX]) -> bool {
    // SAFETY: the same bytes, seen as words: `ExeMatch::path` is 8-byte aligned (it
    // follows a u64 and two u32s).
    let path = unsafe { &*(path as *const [u8; EXE_PATH_MAX] as *const [u64; EXE_PATH_MAX / 8]) };
    if path[0] == 0 {
        return false;
    }
    for w in 0..EXE_PATH_MAX / 8 {
        if name[w] != path[w] {
            return false;
        }
    }
    true
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
    let Some((tid, tgid)) = task_ids(task) else {
        return 0;
    };
    match first(c.n_cgroups, |i| c.cgroups[i] == id) {
        Some(i) => take_in(
            task,
            tid,
            tgid,
            c.cgroup_slots[i],
            BY_CGROUP,
            taken_cause::CGROUP,
        ),
        None => let_go(tgid, BY_CGROUP),
    }
    0
}
