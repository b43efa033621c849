//! Memory and descriptors of traced processes: what their syscalls map, unmap, open and
//! close (folded in at sys_exit, see `syscalls.rs`), and their RSS from the kernel's own
//! counters at every `rss_stat` tracepoint (raw, so no tracefs and no record is built).
use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns, bpf_probe_read_user,
    },
    macros::{map, raw_tracepoint},
    maps::{Array, PerCpuArray, ProgramArray},
    programs::RawTracePointContext,
};
use tracer_common::{
    COMPAT_IDX, Drop, KernelOffsets, MAX_TARGETS, SYSCALL_SLOTS,
    memory::{
        CLOSE_RANGE_CLOEXEC, F_DUPFD, F_DUPFD_CLOEXEC, MAP_ANONYMOUS, MAX_CMSGS, MAX_FD_WORDS,
        MAX_MMSGS, MMAP_ARG32_FLAGS, MMAP_ARG32_LEN, MemConfig, MemSyscalls, MsgLayout,
        RssSnapshot, SCM_RIGHTS, SOL_SOCKET, class, enter_flags, socketcall,
    },
};

use crate::{
    events::{offsets, read_at, rodata},
    filter::{count_drop, target_slot},
};

/// Set by userspace; in .rodata, so the verifier drops the memory code from sys_enter and
/// sys_exit when `enabled` is 0.
#[unsafe(no_mangle)]
static MEMORY: MemConfig = MemConfig {
    enabled: 0,
    nr_dup2: 0,
    nr_dup3: 0,
    nr_close_range: 0,
    nr_execve: 0,
    nr_execveat: 0,
    nr32_dup2: 0,
    nr32_dup3: 0,
    nr32_close_range: 0,
    nr32_execve: 0,
    nr32_execveat: 0,
};

/// Syscall nr -> [`class`], x86_64 numbers then i386 numbers from `SYSCALL_SLOTS`; filled
/// by userspace.
#[map(name = "MEM_CLASS")]
static MEM_CLASS: Array<u32> = Array::with_max_entries(2 * SYSCALL_SLOTS, 0);

#[map(name = "MEM_SYSCALLS")]
static MEM_SYSCALLS: Array<MemSyscalls> = Array::with_max_entries(MAX_TARGETS, 0);

/// [`sys_enter_fds`], for sys_enter to tail-call (set by userspace with the memory section).
#[map(name = "FD_SCAN")]
static FD_SCAN: ProgramArray = ProgramArray::with_max_entries(1, 0);

#[map(name = "RSS")]
static RSS: PerCpuArray<RssSnapshot> = PerCpuArray::with_max_entries(MAX_TARGETS, 0);

#[inline(always)]
fn config() -> &'static MemConfig {
    rodata(&MEMORY)
}

#[inline(always)]
pub fn enabled() -> bool {
    config().enabled != 0
}

/// Whether an aggregate index (see `ThreadState::stats_idx`) is an `execve` or `execveat`.
#[inline(always)]
pub fn is_exec(stats_idx: u32) -> bool {
    let c = config();
    let nr = stats_idx % SYSCALL_SLOTS;
    if stats_idx & COMPAT_IDX != 0 {
        nr == c.nr32_execve || nr == c.nr32_execveat
    } else {
        nr == c.nr_execve || nr == c.nr_execveat
    }
}

/// Which of the descriptor syscalls whose effect depends on the descriptor table `id` is:
/// (`dup2`/`dup3`, `close_range`, `execve`/`execveat`).
#[inline(always)]
fn table_dependent(id: u64, compat: bool) -> (bool, bool, bool) {
    let c = config();
    if compat {
        (
            id == c.nr32_dup2 as u64 || id == c.nr32_dup3 as u64,
            id == c.nr32_close_range as u64,
            id == c.nr32_execve as u64 || id == c.nr32_execveat as u64,
        )
    } else {
        (
            id == c.nr_dup2 as u64 || id == c.nr_dup3 as u64,
            id == c.nr_close_range as u64,
            id == c.nr_execve as u64 || id == c.nr_execveat as u64,
        )
    }
}

/// Whether the traced thread entering syscall `id` needs [`sys_enter_fds`] once its entry
/// is written: for the descriptor syscalls whose effect depends on the descriptor table.
/// A few compares. sys_enter then tail-calls it ([`scan_fds`]), a program of its own for
/// the verifier: its scan of the table's bitmaps, a loop, is walked once, not once for
/// every way sys_enter can reach it (which took sys_enter past the 5.10 and 6.1
/// verifiers' limit). If the tail call cannot be made, the call's flags stay 0 (its
/// descriptors are counted as if the table held none of those).
#[inline(always)]
pub fn needs_scan(id: u64, compat: bool) -> bool {
    let (dup, close_range, exec) = table_dependent(id, compat);
    dup || close_range || exec
}

/// Tail-calls [`sys_enter_fds`]; returns only if that cannot be done.
#[inline(always)]
pub fn scan_fds(ctx: &RawTracePointContext) {
    // SAFETY: the context is sys_enter's own, as the called program expects.
    unsafe { FD_SCAN.tail_call(ctx, 0) };
}

/// sys_enter's descriptor scan (see [`needs_scan`]): the flags of the running thread's
/// call, written into its entry for sys_exit. Loaded, never attached: tail-called.
/// TP_PROTO(struct pt_regs *regs, long id)
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter_fds(ctx: RawTracePointContext) -> i32 {
    let Some(s) = crate::syscalls::own_entry(ctx.arg(0)) else {
        return 0;
    };
    // SAFETY: the running thread's own entry (see `own_entry`), on this CPU now.
    let compat = unsafe { (*s).stats_idx } & COMPAT_IDX != 0;
    let flags = on_sys_enter(&ctx, ctx.arg(1), compat);
    // SAFETY: as above.
    unsafe { (*s).flags = flags };
    0
}

/// What the descriptor syscall the running thread enters will do to its table:
/// `dup2`/`dup3` (is the target open?), `close_range` (how many of the range are open?),
/// `execve`/`execveat` (how many are close-on-exec?).
#[inline(always)]
fn on_sys_enter(ctx: &RawTracePointContext, id: u64, compat: bool) -> u32 {
    let (dup, close_range, exec) = table_dependent(id, compat);
    if !(dup || close_range || exec) {
        return 0;
    }
    let regs: u64 = ctx.arg(0);
    let o = offsets();
    let a = Args::new(regs, o, compat);
    if dup {
        return if fd_is_open(a.get(1), &o) {
            enter_flags::DUP_CHECKED | enter_flags::DUP_TARGET_OPEN
        } else {
            enter_flags::DUP_CHECKED
        };
    }
    // One call site for the bitmap scan: the verifier walks its loop once per site.
    let (first, last) = if close_range {
        // close_range(unsigned int fd, unsigned int max_fd, unsigned int flags)
        if a.get(2) & CLOSE_RANGE_CLOEXEC != 0 {
            return 0; // only marks them close-on-exec
        }
        (a.get(0) & 0xffff_ffff, a.get(1) & 0xffff_ffff)
    } else {
        (0, u64::MAX)
    };
    closes(count_fds(&o, first, last, exec))
}

#[inline(always)]
fn closes(n: u32) -> u32 {
    enter_flags::CLOSES | (n << enter_flags::CLOSES_SHIFT)
}

/// The running task's descriptor table (`current->files->fdt`).
#[inline(always)]
fn fdtable(o: &KernelOffsets) -> Option<u64> {
    // SAFETY: returns the running task; read only through bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() };
    read_at::<u64>(task, o.task_files).and_then(|f| read_at::<u64>(f, o.files_fdt))
}

/// Open descriptors numbered `first..=last` of the running task (with `cloexec_only`,
/// only those marked close-on-exec), from the table's bitmaps, over at most
/// [`MAX_FD_WORDS`] words. The loop body has no branch but its bound, so that the
/// verifier's walk through it stays linear.
#[inline(always)]
fn count_fds(o: &KernelOffsets, first: u64, last: u64, cloexec_only: bool) -> u32 {
    let Some(fdt) = fdtable(o) else {
        return 0;
    };
    let max = read_at::<u32>(fdt, o.fdtable_max_fds).unwrap_or(0) as u64;
    if first >= max {
        return 0;
    }
    let last = if last >= max { max - 1 } else { last };
    let (Some(open), Some(cloexec)) = (
        read_at::<u64>(fdt, o.fdtable_open_fds),
        read_at::<u64>(fdt, o.fdtable_close_on_exec),
    ) else {
        return 0;
    };
    // Without cloexec_only, the close-on-exec word is or'ed with all ones.
    let keep = if cloexec_only { 0 } else { u64::MAX };
    let word = |w: u64| -> u64 {
        read_at::<u64>(open + w * 8, 0).unwrap_or(0)
            & (read_at::<u64>(cloexec + w * 8, 0).unwrap_or(0) | keep)
    };
    let (w0, w1) = (first / 64, last / 64);
    let low = u64::MAX << (first % 64);
    let high = u64::MAX >> (63 - last % 64);
    if w0 == w1 {
        return (word(w0) & low & high).count_ones();
    }
    let mut n = (word(w0) & low).count_ones() + (word(w1) & high).count_ones();
    let inner = w1 - w0 - 1;
    for i in 0..MAX_FD_WORDS {
        if i >= inner {
            break;
        }
        n += word(w0 + 1 + i).count_ones();
    }
    n
}

/// Whether descriptor `fd` of the running task is open: a bit of
/// `current->files->fdt->open_fds`.
#[inline(always)]
fn fd_is_open(fd: u64, o: &KernelOffsets) -> bool {
    let Some(fdt) = fdtable(o) else {
        return false;
    };
    let max = read_at::<u32>(fdt, o.fdtable_max_fds).unwrap_or(0) as u64;
    if fd >= max {
        return false;
    }
    let Some(bits) = read_at::<u64>(fdt, o.fdtable_open_fds) else {
        return false;
    };
    match read_at::<u64>(bits + (fd / 64) * 8, 0) {
        Some(word) => (word >> (fd % 64)) & 1 != 0,
        None => false,
    }
}

#[inline(always)]
fn add(field: &mut u64, v: u64) {
    // SAFETY: the field lives in a map value for as long as the program runs; the add is
    // atomic because several CPUs may update the same process's entry. The result is not
    // used, so this is the plain BPF atomic add that every kernel supports.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(field, v) };
}

#[inline(always)]
fn pages(len: u64, page: u64) -> u64 {
    (len + page - 1) & !(page - 1)
}

/// The arguments of the running syscall, in the `struct pt_regs *` of sys_enter/sys_exit:
/// x86_64's registers, or i386's for a 32-bit call (whose values are 32 bits wide).
struct Args {
    regs: u64,
    off: [u32; 4],
    compat: bool,
}

impl Args {
    #[inline(always)]
    fn new(regs: u64, o: &KernelOffsets, compat: bool) -> Self {
        let off = if compat {
            [
                o.regs_compat_arg0,
                o.regs_compat_arg1,
                o.regs_compat_arg2,
                o.regs_compat_arg3,
            ]
        } else {
            [o.regs_arg0, o.regs_arg1, o.regs_arg2, o.regs_arg3]
        };
        Args { regs, off, compat }
    }

    /// Argument `i` (0 to 3); 0 if it cannot be read.
    #[inline(always)]
    fn get(&self, i: usize) -> u64 {
        let v = match self.off.get(i) {
            Some(&off) => read_at::<u64>(self.regs, off).unwrap_or(0),
            None => 0,
        };
        if self.compat { v & 0xffff_ffff } else { v }
    }
}

/// A word of the caller's memory: `size` bytes (8 or 4), zero-extended.
#[inline(always)]
fn user_word(addr: u64, size: u64) -> Option<u64> {
    // SAFETY: the helper checks the user address; a bad one is an error, not a fault.
    unsafe {
        if size == 4 {
            bpf_probe_read_user(addr as *const u32).ok().map(u64::from)
        } else {
            bpf_probe_read_user(addr as *const u64).ok()
        }
    }
}

/// Folds a finished syscall into the process's memory and descriptor counters. Called by
/// sys_exit for traced threads only; for syscalls of no interest it costs one inlined
/// array lookup.
#[inline(always)]
pub fn on_sys_exit(regs: u64, stats_idx: u32, ret: i64, flags: u32) {
    let compat = stats_idx & COMPAT_IDX != 0;
    let idx = stats_idx & !COMPAT_IDX;
    let nr = idx % SYSCALL_SLOTS + if compat { SYSCALL_SLOTS } else { 0 };
    let c = match MEM_CLASS.get(nr) {
        Some(&c) if c != class::NONE => c,
        _ => return,
    };
    if ret < 0 && ret >= -4095 {
        return; // failed: nothing changed (the errno is counted by sys_exit)
    }
    let Some(m) = MEM_SYSCALLS.get_ptr_mut(idx / SYSCALL_SLOTS) else {
        count_drop(Drop::MemSlotOutOfRange);
        return;
    };
    // SAFETY: a map value, valid while the program runs; counters are updated atomically.
    let m = unsafe { &mut *m };
    let o = offsets();
    let a = Args::new(regs, o, compat);
    let page = o.page_size as u64;
    // Messages to scan for received descriptors: (32-bit layout, msghdr or mmsghdr vector,
    // number of messages). One call site per layout, so the verifier walks each scan once.
    let mut recv = None;
    match c {
        class::BRK => {
            m.brk = ret as u64;
            // SAFETY: returns the running task; read only through bpf_probe_read_kernel.
            let task = unsafe { bpf_get_current_task() };
            if let Some(mm) = read_at::<u64>(task, o.task_mm)
                && let Some(start) = read_at::<u64>(mm, o.mm_start_brk)
            {
                m.start_brk = start;
            }
        }
        class::MMAP => mapped(m, pages(a.get(1), page), a.get(3)),
        class::MMAP_STRUCT32 => {
            let arg = a.get(0);
            if let (Some(len), Some(mflags)) = (
                user_word(arg + MMAP_ARG32_LEN, 4),
                user_word(arg + MMAP_ARG32_FLAGS, 4),
            ) {
                mapped(m, pages(len, page), mflags);
            }
        }
        class::MUNMAP => add(&mut m.unmapped, pages(a.get(1), page)),
        class::MREMAP => {
            let old = pages(a.get(1), page);
            let new = pages(a.get(2), page);
            if new > old {
                add(&mut m.remap_grown, new - old);
            } else {
                add(&mut m.remap_shrunk, old - new);
            }
        }
        class::FD_NEW => opened(m, 1),
        class::FD_PAIR => opened(m, 2),
        class::FD_CLOSE => add(&mut m.fds_closed, 1),
        class::FD_FCNTL => {
            let cmd = a.get(1);
            if cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC {
                opened(m, 1);
            }
        }
        class::FD_SIGNALFD => {
            if a.get(0) as i32 == -1 {
                opened(m, 1);
            }
        }
        class::FD_CLOSE_MANY => {
            if flags & enter_flags::CLOSES != 0 {
                add(
                    &mut m.fds_closed,
                    (flags >> enter_flags::CLOSES_SHIFT) as u64,
                );
            }
        }
        class::FD_RECVMSG => recv = Some((compat, a.get(1), 1)),
        // ret: the number of messages received.
        class::FD_RECVMMSG => recv = Some((compat, a.get(1), ret as u64)),
        class::FD_SOCKETCALL => {
            // socketcall(int call, u32 *args): the call's own arguments are in the array.
            let args = a.get(1);
            let msg = || user_word(args + 4, 4).unwrap_or(0);
            match a.get(0) {
                socketcall::SOCKET | socketcall::ACCEPT | socketcall::ACCEPT4 => opened(m, 1),
                socketcall::SOCKETPAIR => opened(m, 2),
                socketcall::RECVMSG => recv = Some((true, msg(), 1)),
                socketcall::RECVMMSG => recv = Some((true, msg(), ret as u64)),
                _ => {}
            }
        }
        class::FD_DUP2 => {
            // dup2(fd, fd) changes nothing; onto an open descriptor it replaces it.
            if flags & enter_flags::DUP_CHECKED != 0
                && flags & enter_flags::DUP_TARGET_OPEN == 0
                && a.get(0) != a.get(1)
            {
                opened(m, 1);
            }
        }
        _ => {}
    }
    match recv {
        Some((false, msg, msgs)) => received::<false>(m, msg, msgs),
        Some((true, msg, msgs)) => received::<true>(m, msg, msgs),
        None => {}
    }
}

/// `len` bytes (whole pages) mapped by a successful mmap with `flags`.
#[inline(always)]
fn mapped(m: &mut MemSyscalls, len: u64, flags: u64) {
    if flags & MAP_ANONYMOUS != 0 {
        add(&mut m.anon_mapped, len);
    } else {
        add(&mut m.file_mapped, len);
    }
}

/// Descriptors received by a successful `recvmsg(fd, msg, ...)` (`msgs` 1: a `msghdr`
/// is where an `mmsghdr` begins) or `recvmmsg(fd, vec, ...)` that received `msgs`
/// messages, in the 64-bit or (`COMPAT`) the 32-bit layout.
///
/// Out of line: only those calls take it, and inlined, its reads shared spill slots with
/// the rest of sys_exit in a way Linux 5.10's and 6.1's verifiers could not follow (a slot
/// holding the thread's entry on one path read as a message length on another: "pointer
/// arithmetic prohibited"). One copy per layout, its offsets constants, with scalar
/// arguments only: given the layout through a pointer to the caller's stack, the scan
/// loaded on those kernels and counted nothing (11 scans, 0 descriptors). Likely cause,
/// from their logs: precision marks are not carried into the caller's stack, so states
/// differing only in the layout can be pruned as one.
#[inline(never)]
fn received<const COMPAT: bool>(m: &mut MemSyscalls, msg: u64, msgs: u64) {
    let l = if COMPAT {
        MsgLayout::I386
    } else {
        MsgLayout::X86_64
    };
    let mut n = 0;
    for i in 0..MAX_MMSGS {
        if i >= msgs {
            break;
        }
        n += received_fds(&l, msg + i * l.mmsghdr);
    }
    if msgs > MAX_MMSGS {
        count_drop(Drop::FdsUnscanned);
    }
    if n > 0 {
        opened(m, n);
    }
}

/// Descriptors a received message brought in its `SCM_RIGHTS` control messages (a unix
/// socket passing descriptors, as node's cluster does to its workers), read from the
/// caller's `struct msghdr` after the call.
#[inline(always)]
fn received_fds(l: &MsgLayout, msg: u64) -> u64 {
    let (Some(control), Some(len)) = (
        user_word(msg + l.control, l.word),
        user_word(msg + l.controllen, l.word),
    ) else {
        return 0;
    };
    let mut fds = 0;
    let mut off = 0;
    for _ in 0..MAX_CMSGS {
        if off + l.cmsghdr > len {
            return fds;
        }
        // cmsg_len, then cmsg_level and cmsg_type.
        let (Some(clen), Some(kind)) = (
            user_word(control + off, l.word),
            user_word(control + off + l.word, 8),
        ) else {
            return fds;
        };
        if clen < l.cmsghdr || clen > len - off {
            return fds;
        }
        if kind as u32 == SOL_SOCKET && (kind >> 32) as u32 == SCM_RIGHTS {
            fds += (clen - l.cmsghdr) / 4;
        }
        off += (clen + l.word - 1) & !(l.word - 1);
    }
    if off + l.cmsghdr <= len {
        count_drop(Drop::FdsUnscanned);
    }
    fds
}

#[inline(always)]
fn opened(m: &mut MemSyscalls, n: u64) {
    add(&mut m.fds_opened, n);
    // Not atomic with the add: with threads opening on two CPUs at once the peak may be
    // one short for an instant, never wrong for long.
    let net = m.fds_opened.saturating_sub(m.fds_closed);
    if net > m.fds_peak_net {
        m.fds_peak_net = net;
    }
}

/// Reads RSS counter `idx` of an mm (pages), as the kernel's own `get_mm_counter` does: the
/// central count of `mm->rss_stat[idx]`, a per-CPU counter from Linux 6.2, an atomic
/// before (see [`KernelOffsets::mm_rss_stat`]).
#[inline(always)]
pub fn mm_counter(mm: u64, o: &KernelOffsets, idx: u32) -> u64 {
    let off = o.mm_rss_stat + idx * o.rss_counter_stride + o.rss_counter_count;
    match read_at::<i64>(mm, off) {
        Some(v) if v > 0 => v as u64,
        _ => 0,
    }
}

/// Faults of an exiting process: those of its threads already released (in the signal
/// struct), of the running thread, and of the group leader when that is another thread
/// (a leader that exited first keeps its own counts until it is reaped).
#[inline(always)]
fn exit_faults(task: u64, o: &KernelOffsets, task_off: u32, signal_off: u32) -> u64 {
    let mut n = read_at::<u64>(task, task_off).unwrap_or(0);
    if let Some(sig) = read_at::<u64>(task, o.task_signal) {
        n += read_at::<u64>(sig, signal_off).unwrap_or(0);
    }
    if let Some(leader) = read_at::<u64>(task, o.task_group_leader)
        && leader != task
    {
        n += read_at::<u64>(leader, task_off).unwrap_or(0);
    }
    n
}

/// `TP_PROTO(struct mm_struct *mm, int member)`: an RSS counter of `mm` changed.
#[raw_tracepoint(tracepoint = "rss_stat")]
pub fn rss_stat(ctx: RawTracePointContext) -> i32 {
    let Some(slot) = target_slot((bpf_get_current_pid_tgid() >> 32) as u32) else {
        return 0;
    };
    let mm: u64 = ctx.arg(0);
    let o = offsets();
    // Only the process's own mm while it runs: when it exits, `current->mm` is already
    // NULL while the mm is torn down, so the last values before the exit stay in place.
    // SAFETY: returns the running task; read only through bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() };
    let Some(cur) = read_at::<u64>(task, o.task_mm) else {
        return 0;
    };
    let Some(snap) = RSS.get_ptr_mut(slot) else {
        return 0;
    };
    // SAFETY: per-CPU value; programs on one CPU do not run concurrently.
    let s = unsafe { &mut *snap };
    if cur == 0 {
        // The process is exiting (its last thread dropped the mm): record its fault counts
        // as /proc would sum them, since its parent may reap it before tracer reads /proc.
        s.exit_minflt = exit_faults(task, &o, o.task_min_flt, o.signal_min_flt);
        s.exit_majflt = exit_faults(task, &o, o.task_maj_flt, o.signal_maj_flt);
        s.exit_ts_ns = unsafe { bpf_ktime_get_ns() };
        return 0;
    }
    if cur != mm {
        return 0; // an exec tearing down the old mm, or another process's mm
    }
    s.file_pages = mm_counter(mm, &o, o.mm_file);
    s.anon_pages = mm_counter(mm, &o, o.mm_anon);
    s.shmem_pages = mm_counter(mm, &o, o.mm_shmem);
    s.swap_pages = mm_counter(mm, &o, o.mm_swap);
    s.ts_ns = unsafe { bpf_ktime_get_ns() };
    let total = s.file_pages + s.anon_pages + s.shmem_pages;
    if total > s.peak_pages {
        s.peak_pages = total;
    }
    0
}
