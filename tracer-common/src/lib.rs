//! Types shared by tracer's kernel programs (`tracer-ebpf`) and its userspace (`tracer`).
//!
//! Everything here is `#[repr(C)]`, `Copy`, free of implicit padding, and checked by a
//! size assertion, so both sides agree on the bytes in the maps.
#![no_std]

pub mod event;
pub mod hist;
pub mod loops;
pub mod memory;
pub mod stream;
pub mod table;
pub mod threads;

use table::Tagged;

/// Syscall numbers are folded into this many slots per traced process. x86_64 numbers
/// stop below 512; anything at or above (x32 numbers, garbage) lands in the last slot.
pub const SYSCALL_SLOTS: u32 = 512;
/// The slot that collects syscall numbers that do not fit.
pub const SYSCALL_OTHER: u32 = SYSCALL_SLOTS - 1;

/// Syscalls made through the 32-bit entry (a 32-bit program, or `int 0x80` from 64-bit
/// code) carry i386 numbers. The kernel side marks their aggregate index with this bit
/// (`COMPAT_IDX | slot * SYSCALL_SLOTS + nr`, in [`maps::COMPAT_STATS`]); userspace
/// numbers them `SYSCALL_SLOTS + nr`, so one number space holds both tables.
pub const COMPAT_IDX: u32 = 1 << 31;
/// `thread_info.status` bit set for the duration of a 32-bit syscall (x86's `TS_COMPAT`,
/// the same from Linux 4.x to 7.x; read from no header here, so the kernel matrix checks
/// it).
pub const TS_COMPAT: u32 = 0x0002;
/// `thread_info.flags` bit of a task whose address space is 32-bit: set by the exec of an
/// i386 program (x86's `TIF_ADDR32`).
pub const TIF_ADDR32: u32 = 29;
/// Distinct (process, i386 syscall) rows the kernel side keeps ([`maps::COMPAT_STATS`]);
/// a 32-bit program uses a few dozen. Beyond, calls are counted as a drop.
pub const COMPAT_ROWS: u32 = 256;

/// Largest number of processes given on the command line (each gets its own slot).
pub const MAX_TARGETS: u32 = 64;

/// Map names, shared so that userspace asks for exactly what the kernel side declares.
pub mod maps {
    /// `Array<TargetEntry>`, a [`crate::table`] by tgid: the traced processes and their slots.
    pub const TARGETS: &str = "TARGETS";
    /// `Array<ThreadState>`, a [`crate::table`] by tid: the syscall a thread is in, and
    /// since when.
    pub const THREADS: &str = "THREADS";
    /// `PerCpuArray<SyscallStats>` indexed by `slot * SYSCALL_SLOTS + nr`.
    pub const SYSCALL_STATS: &str = "SYSCALL_STATS";
    /// `PerCpuHashMap<u32, SyscallStats>` keyed by `COMPAT_IDX | slot * SYSCALL_SLOTS + nr`:
    /// the same for i386 syscall numbers (see [`crate::COMPAT_IDX`]).
    pub const COMPAT_STATS: &str = "COMPAT_STATS";
    /// `PerCpuArray<SyscallStats>` of one zeroed entry: what a new `COMPAT_STATS` row is
    /// inserted from (a `SyscallStats` does not fit on the BPF stack).
    pub const COMPAT_ZERO: &str = "COMPAT_ZERO";
    /// `PerCpuHashMap<ErrnoKey, u64>`: failed calls per (slot, syscall, errno).
    pub const ERRNOS: &str = "ERRNOS";
    /// `PerCpuArray<u64>` indexed by [`crate::Drop`]: what the kernel side could not record.
    pub const DROPS: &str = "DROPS";
    /// `RingBuf` of discrete events ([`crate::event`]): fork, exec, exit, signal, OOM kill.
    pub const EVENTS: &str = "EVENTS";
    /// `Array<ThreadSched>`, a [`crate::table`] by tid: each traced thread's scheduling
    /// state.
    pub const THREAD_SCHED: &str = "THREAD_SCHED";
    /// `HashMap<u32 tid, SchedStats>`: cumulative scheduling counters per traced thread
    /// (kept after the thread ends, so that its numbers reach the report). Preallocated
    /// before Linux 6.1, allocated by use from 6.1 (userspace sets its flags).
    pub const THREAD_STATS: &str = "THREAD_STATS";
    /// `PerCpuArray<SchedStats>` indexed by target slot: per-process totals.
    pub const SCHED_STATS: &str = "SCHED_STATS";
    /// `Array<u32>` indexed by syscall nr (x86_64 numbers, then i386 numbers at
    /// `SYSCALL_SLOTS + nr`): its [`crate::memory::class`] (0 = not a memory or
    /// descriptor syscall). Filled by userspace only when the memory section is selected.
    pub const MEM_CLASS: &str = "MEM_CLASS";
    /// `Array<u32>` indexed like [`MEM_CLASS`]: each syscall's [`crate::block_cause`] when
    /// a thread blocks inside it (filled by userspace; [`crate::block_cause::FUTEX`] for
    /// the futex calls, whose operation decides).
    pub const BLOCK_CAUSE: &str = "BLOCK_CAUSE";
    /// `LruHashMap<u32, loops::LoopState>` by tid: the loop threads ([`crate::loops`]).
    pub const LOOPS: &str = "LOOPS";
    /// `HashMap<threads::ThreadCallKey, threads::ThreadCalls>`: per-thread syscall
    /// tables (`--threads`). Preallocated before Linux 6.1, allocated by use from 6.1.
    pub const THREAD_CALLS: &str = "THREAD_CALLS";
    /// `Array<MemSyscalls>` indexed by target slot (shared by all CPUs, atomic adds).
    pub const MEM_SYSCALLS: &str = "MEM_SYSCALLS";
    /// `PerCpuArray<RssSnapshot>` indexed by target slot: the mm's RSS counters at the
    /// latest `rss_stat` seen on that CPU, and the peak.
    pub const RSS: &str = "RSS";
    /// `Array<ExeMatch>` of [`crate::MAX_EXES`] entries: the executables `--exe` selects
    /// (the first `SelectConfig::n_exes`), kept current by userspace.
    pub const EXES: &str = "EXES";
    /// `Array<ProcCalls>` beside [`TARGETS`], entry for entry: each traced process's own
    /// syscall and error counts (shared by all CPUs, atomic adds).
    pub const PROC_CALLS: &str = "PROC_CALLS";
    /// `ProgramArray` of one: the memory section's descriptor scan, which sys_enter
    /// tail-calls for dup2/dup3, close_range and execve/execveat.
    pub const FD_SCAN: &str = "FD_SCAN";
    /// `RingBuf` of streamed calls (`--trace`), apart from [`EVENTS`] so that a stream can
    /// never starve the life events that following relies on.
    pub const STREAM_RING: &str = "STREAM_RING";
    /// `LruHashMap` by tid of the calls in progress selected for the stream (their
    /// arguments, captured at sys_enter).
    pub const STREAM_PENDING: &str = "STREAM_PENDING";
    /// `Array` of `CallStart`, indexed like [`THREADS`]: when a selected call without
    /// path arguments began.
    pub const STREAM_START: &str = "STREAM_START";
    /// `PerCpuArray` of one `CallRecord`: where sys_enter builds it.
    pub const STREAM_SCRATCH: &str = "STREAM_SCRATCH";
    /// `PerCpuArray` of one record with its user stack (`--stack`): where sys_exit
    /// appends the stack before sending.
    pub const STREAM_STACKED: &str = "STREAM_STACKED";
    /// `PerCpuArray<u64>` by [`crate::stream::Lost`]: calls selected but not sent.
    pub const STREAM_LOST: &str = "STREAM_LOST";
}

/// Threads whose scheduling counters can be kept per run ([`maps::THREAD_STATS`], with
/// `--threads` only): 1408 bytes each, 5.8 MB where preallocated (before Linux 6.1).
pub const MAX_THREADS: u32 = 4096;

/// Names of the globals userspace sets at load time (`EbpfLoader::set_global`).
pub mod globals {
    /// `KernelOffsets`: struct member offsets read from the kernel's BTF.
    pub const OFFSETS: &str = "OFFSETS";
    /// `u32`: 1 to trace children forked by traced processes (`--follow`).
    pub const FOLLOW: &str = "FOLLOW";
    /// `u32`: 1 to keep each thread's own scheduling counters (`--threads`); otherwise
    /// only the processes' totals are kept, and [`super::maps::THREAD_STATS`] holds one entry.
    pub const PER_THREAD: &str = "PER_THREAD";
    /// [`crate::memory::MemConfig`]: whether the memory section is selected, and the
    /// syscall numbers sys_enter looks at. In .rodata, so with `enabled == 0` the verifier
    /// removes the memory code from sys_enter and sys_exit and it costs nothing.
    pub const MEMORY: &str = "MEMORY";
    /// [`crate::SyscallTiming`]: how syscall latency is sampled.
    pub const TIMING: &str = "TIMING";
    /// `u32`: 1 when the sched section attributes blocked time to its cause
    /// ([`super::block_cause`]): it needs the syscall hooks' per-thread state, so the
    /// syscalls or memory section must be selected too.
    pub const BLOCK_CAUSES: &str = "BLOCK_CAUSES";
    /// [`crate::loops::LoopConfig`]: whether loop threads are followed, and the stall
    /// threshold. In .rodata: with `enabled == 0` the verifier removes the loop code.
    pub const LOOP_CONFIG: &str = "LOOP_CONFIG";
    /// `u32`: 1 to keep per-thread syscall tables (`--threads`, with the syscall hooks).
    /// In .rodata: otherwise the verifier removes that code from sys_exit.
    pub const THREAD_CALLS_ON: &str = "THREAD_CALLS_ON";
    /// `u32`: entries of each [`crate::table`] (TARGETS, THREADS, THREAD_SCHED), from
    /// `table::entries(pid_max)`.
    pub const TABLE_ENTRIES: &str = "TABLE_ENTRIES";
    /// [`crate::SelectConfig`]: the selectors.
    pub const SELECT: &str = "SELECT";
    /// [`crate::stream::StreamConfig`].
    pub const STREAM: &str = "STREAM";
}

/// Selectors (`--comm`, `--cgroup`) the kernel side matches processes against, at exec
/// and at a move between cgroups; set by userspace at load time (a .rodata global).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SelectConfig {
    /// Process names (`comm`, NUL-padded; 15 bytes at most, as the kernel keeps them).
    pub comms: [[u8; 16]; MAX_SELECTORS],
    pub comm_slots: [u32; MAX_SELECTORS],
    pub n_comms: u32,
    /// Cgroup ids (the cgroup directory's inode number, `kernfs_node.id`).
    pub n_cgroups: u32,
    pub cgroups: [u64; MAX_SELECTORS],
    pub cgroup_slots: [u32; MAX_SELECTORS],
    /// Entries of [`maps::EXES`] in use (`--exe`).
    pub n_exes: u32,
    pub _pad: u32,
}
const _: () =
    assert!(core::mem::size_of::<SelectConfig>() == 16 * 8 + 4 * 8 + 8 + 8 * 8 + 4 * 8 + 8);

/// Longest executable path an exec's file name is compared with, NUL included.
pub const EXE_PATH_MAX: usize = 256;

/// An executable a `--exe` selector matches (an entry of [`maps::EXES`]; two per selector:
/// the path as given and its canonical form, when they differ). An exec matches it when its
/// file is the same inode on the same device, or when the file name it was given is the
/// path (the binary replaced by a new file since, as a package upgrade does). Userspace
/// looks at the path again every second and puts the new inode in.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExeMatch {
    pub ino: u64,
    /// The device as the kernel numbers it (`MKDEV`: major << 20 | minor).
    pub dev: u32,
    pub slot: u32,
    /// The path, NUL-padded.
    pub path: [u8; EXE_PATH_MAX],
}
const _: () = assert!(core::mem::size_of::<ExeMatch>() == 16 + EXE_PATH_MAX);

impl Default for ExeMatch {
    fn default() -> Self {
        Self {
            ino: 0,
            dev: 0,
            slot: 0,
            path: [0; EXE_PATH_MAX],
        }
    }
}

/// Entries of [`maps::EXES`].
pub const MAX_EXES: u32 = 2 * MAX_SELECTORS as u32;

/// Selectors of each kind at most.
pub const MAX_SELECTORS: usize = 8;

/// A traced process: an entry of [`maps::TARGETS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetEntry {
    pub tgid: u32,
    /// Target slot + 1; 0 = not traced (the entry is free).
    pub slot1: u32,
    /// [`target_flags`].
    pub flags: u32,
    /// The entry's own index in the table, written by whoever places it: the index of the
    /// process's [`ProcCalls`] in [`maps::PROC_CALLS`]. (Loaded rather than carried from
    /// the lookup: an index that differs in each way of the set keeps the old verifiers
    /// from merging the ways' paths, and sys_enter then grew past their limit.)
    pub index: u32,
}
const _: () = assert!(core::mem::size_of::<TargetEntry>() == 16);

/// Bits of [`TargetEntry::flags`].
pub mod target_flags {
    /// Taken in by a `--comm` selector: leaves the filter when an exec gives it another
    /// name. Its children (which keep its name until they exec) join at fork.
    pub const BY_COMM: u32 = 2;
    /// Taken in by a `--cgroup` selector: leaves the filter when it moves out of the
    /// cgroup. Its children (born in its cgroup) join at fork.
    pub const BY_CGROUP: u32 = 4;
    /// Taken in by an `--exe` selector: leaves the filter when it execs another program.
    /// Its children (running the same program until they exec) join at fork.
    pub const BY_EXE: u32 = 8;
    /// The process has ended (its last thread's exit was seen). Its entry stays, for
    /// exits of its threads that show late (before Linux 6.16), until a new process
    /// needs the room: a full set takes an ended process's entry, so that a long run of
    /// churning followed children never fills the table (with pid_max 4194304 ids are not
    /// reused for long, and `task_new` clears an entry only when its id is).
    pub const ENDED: u32 = 16;
    /// The process makes 32-bit syscalls: every call of it is asked which table its number
    /// belongs to. Set for a 32-bit program (at attach from its ELF class, at exec from
    /// [`super::TIF_ADDR32`]), and for a 64-bit one once one of its calls is seen to
    /// be 32-bit (`int 0x80`). Asking costs two helper calls, so other processes' calls are
    /// asked only within their thread's budget of timed calls per scheduler tick (the
    /// first 32): a 64-bit process's `int 0x80` calls before the first one made within a
    /// budget are named from the x86_64 table (only possible after 32 calls in the same
    /// tick; never with `--exact-latency`, which asks every call).
    pub const COMPAT: u32 = 1;
}

/// A traced process's own counts: the entry of [`maps::PROC_CALLS`] at the index of its
/// [`TargetEntry`]. Whoever gives a process an entry (kernel or userspace) writes its
/// start here with zero counts; the counts of an ended process leave in its exit event
/// before its entry can be given again. Its processes' counts summed are its slot's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcCalls {
    pub calls: u64,
    pub errors: u64,
    /// The process's `start_boottime` in ns (exact when the kernel side took it in; whole
    /// clock ticks when userspace did, from /proc/PID/stat): with `tgid`, who it is.
    pub start_ns: u64,
    pub tgid: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<ProcCalls>() == 32);

impl TargetEntry {
    /// Whether another process may take this entry: free, or of a process that has ended.
    pub fn reusable(&self) -> bool {
        self.slot1 == 0 || self.flags & target_flags::ENDED != 0
    }
}

impl Tagged for TargetEntry {
    fn tag(&self) -> u32 {
        self.tgid
    }
}

/// What the programs need to know about the running kernel, found in its BTF
/// (/sys/kernel/btf/vmlinux) by userspace: struct member offsets (Rust eBPF has no CO-RE
/// relocations; nothing here is hard-coded) and which arguments the tracepoints pass, which
/// differ between kernels. In .rodata, so the verifier drops the branches for the other
/// kernels: a program never reads an argument this kernel's tracepoint does not have (the
/// attach would fail with EINVAL).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.pid` (the thread id).
    pub task_pid: u32,
    /// `task_struct.tgid` (the process id).
    pub task_tgid: u32,
    /// `task_struct.exit_code` (wait status: code << 8, or the killing signal).
    pub task_exit_code: u32,
    /// `task_struct.mm`, `task_struct.comm`, `task_struct.cgroups`.
    pub task_mm: u32,
    pub task_comm: u32,
    pub task_cgroups: u32,
    /// `mm_struct.rss_stat`: counter `i` (pages) is the `i64` at
    /// `mm_rss_stat + i * rss_counter_stride + rss_counter_count`. From Linux 6.2 an array of
    /// `struct percpu_counter` (its central `count`), before a `struct mm_rss_stat` holding
    /// `atomic_long_t count[]`.
    pub mm_rss_stat: u32,
    pub rss_counter_stride: u32,
    pub rss_counter_count: u32,
    /// `mm_struct.start_brk`, `mm_struct.total_vm`.
    pub mm_start_brk: u32,
    pub mm_total_vm: u32,
    /// Indexes of `rss_stat[]`: the kernel's `MM_FILEPAGES`, `MM_ANONPAGES`, `MM_SWAPENTS`,
    /// `MM_SHMEMPAGES` (enum values, read from BTF too).
    pub mm_file: u32,
    pub mm_anon: u32,
    pub mm_swap: u32,
    pub mm_shmem: u32,
    /// `css_set.subsys` (array of `cgroup_subsys_state *`), the kernel's `memory_cgrp_id`,
    /// `cgroup_subsys_state.cgroup`, `cgroup.kn`, `kernfs_node.id`, `kernfs_node.name`.
    pub css_set_subsys: u32,
    pub memory_cgrp_id: u32,
    pub css_cgroup: u32,
    pub cgroup_kn: u32,
    pub kernfs_id: u32,
    pub kernfs_name: u32,
    /// `pt_regs` members holding syscall arguments 0, 1, 2, 3 (x86_64: di, si, dx, r10).
    pub regs_arg0: u32,
    pub regs_arg1: u32,
    pub regs_arg2: u32,
    pub regs_arg3: u32,
    /// Arguments 4 and 5 (x86_64: r8, r9; i386: edi, ebp), read for the call stream.
    pub regs_arg4: u32,
    pub regs_arg5: u32,
    pub regs_compat_arg4: u32,
    pub regs_compat_arg5: u32,
    /// The same for 32-bit syscalls (i386: bx, cx, dx, si).
    pub regs_compat_arg0: u32,
    pub regs_compat_arg1: u32,
    pub regs_compat_arg2: u32,
    pub regs_compat_arg3: u32,
    /// `task_struct.thread_info` + `thread_info.status`: holds [`TS_COMPAT`] during a
    /// 32-bit syscall; + `thread_info.flags` (an `unsigned long`): [`TIF_ADDR32`].
    pub task_ti_status: u32,
    pub task_ti_flags: u32,
    /// The page size in bytes (not an offset, but fixed per kernel like them).
    pub page_size: u32,
    /// `task_struct.min_flt`, `.maj_flt`, `.signal`, `.group_leader`; `signal_struct.min_flt`,
    /// `.maj_flt` (faults of threads already gone).
    pub task_min_flt: u32,
    pub task_maj_flt: u32,
    pub task_signal: u32,
    pub task_group_leader: u32,
    pub signal_min_flt: u32,
    pub signal_maj_flt: u32,
    /// `task_struct.files`, `files_struct.fdt`, `fdtable.max_fds`, `fdtable.open_fds`
    /// (whether a descriptor number is open, for `dup2`/`dup3`).
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdtable_max_fds: u32,
    pub fdtable_open_fds: u32,
    /// `fdtable.close_on_exec` (descriptors an exec will close).
    pub fdtable_close_on_exec: u32,
    /// `task_struct.stack` (the base of the thread's kernel stack; its syscall `pt_regs`
    /// lie at the top).
    pub task_stack: u32,
    /// 1 when `sched_switch` passes `prev_state` (Linux 5.18 on); before, the state is read
    /// from the task at `task_state` (`task_struct.__state`, `.state` before 5.14; its low
    /// 32 bits).
    pub switch_has_prev_state: u32,
    pub task_state: u32,
    /// 1 when `sched_process_exit` passes `group_dead` (Linux 6.16 on); before, the exiting
    /// thread is the process's last when `signal_struct.live` (an `atomic_t`) is 0, and
    /// the process is then identified by its leader's `task_struct.start_time`.
    pub exit_has_group_dead: u32,
    pub signal_live: u32,
    pub task_start_time: u32,
    /// 1 when `mark_victim` passes the victim's pid rather than its task (Linux 5.x): the
    /// task is then the one the OOM killer has just sent SIGKILL to.
    pub oom_victim_is_pid: u32,
    /// `kernel_siginfo.si_code`: who generated a signal.
    pub siginfo_code: u32,
    /// `task_struct.start_boottime`: with the pid, a process's identity.
    pub task_start_boottime: u32,
    /// `linux_binprm.file`, `linux_binprm.filename`, `file.f_inode`, `inode.i_ino`,
    /// `inode.i_sb`, `super_block.s_dev`: the executable of an exec (`--exe`).
    pub bprm_file: u32,
    pub bprm_filename: u32,
    pub file_inode: u32,
    pub inode_ino: u32,
    pub inode_sb: u32,
    pub sb_dev: u32,
    /// `task_struct.se` + `sched_entity.sum_exec_runtime`, `task_struct.sched_info` +
    /// `sched_info.run_delay`: a thread's on-CPU and run-queue time as the scheduler
    /// accounts them (for event loops' stalls; 0 where the kernel lacks them).
    pub task_exec_runtime: u32,
    pub task_run_delay: u32,
    /// `kernel_siginfo._sifields`: the union whose first word is a fault's address.
    pub siginfo_fields: u32,
    /// `pt_regs.ip`, `.cs`, `.ss` and the size of `pt_regs`: a crashing thread's user
    /// registers, at the top of its kernel stack (see `life::user_ip` in the eBPF crate);
    /// all 0 when BTF lacks them (no ip is read then).
    pub regs_ip: u32,
    pub regs_cs: u32,
    pub regs_ss: u32,
    pub regs_size: u32,
}
const _: () = assert!(core::mem::size_of::<KernelOffsets>() == 276);

impl KernelOffsets {
    /// All zeros: the kernel side's placeholder until userspace sets the real values.
    // SAFETY: all fields are integers, for which zero is a valid value.
    pub const ZERO: KernelOffsets = unsafe { core::mem::zeroed() };
}

/// Why the kernel side failed to record something. Index into [`maps::DROPS`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// The per-errno map was full: the call and its error were counted, its errno was not.
    ErrnoMapFull = 0,
    /// A traced thread found no entry in a per-thread table (its set was full, see
    /// [`table`]): its syscall or its switch was not recorded.
    ThreadTableFull = 1,
    /// The event ring buffer was full: an event (fork, exit, OOM kill...) was lost.
    RingBufFull = 2,
    /// The per-thread scheduling map was full: a thread's own counters were not kept (its
    /// process's totals still were).
    ThreadStatsFull = 3,
    /// A memory or descriptor syscall of a process whose slot is beyond the memory maps
    /// (cannot happen while slots <= MAX_TARGETS; counted rather than assumed).
    MemSlotOutOfRange = 4,
    /// A new task's kernel stack address could not be read, so the untraced-thread cache
    /// could not be cleared for it: if that task is traced, its syscalls may be missed
    /// (never expected: the task is being created and its `task_struct` is valid).
    TaskStackUnreadable = 5,
    /// A `recvmsg`/`recvmmsg` brought more control messages or messages than the kernel
    /// side reads: descriptors received in them were not counted.
    FdsUnscanned = 6,
    /// A 32-bit syscall of a (process, syscall) beyond the [`COMPAT_ROWS`] kept: not counted.
    CompatRowsFull = 7,
    /// A (thread, syscall) row of the per-thread tables could not be made (never expected:
    /// the map is an LRU, it makes room).
    ThreadCallsFull = 8,
}
pub const DROP_KINDS: u32 = 9;

/// Scheduling state of a thread, as the hooks track it.
pub mod sched_state {
    /// Not known yet (seen by no hook since tracing started).
    pub const UNKNOWN: u32 = 0;
    /// On a CPU since `since_ns`.
    pub const RUNNING: u32 = 1;
    /// Runnable, waiting for a CPU since `since_ns` (woken, or preempted).
    pub const RUNNABLE: u32 = 2;
    /// Blocked (sleeping, waiting for I/O or a lock) since `since_ns`.
    pub const BLOCKED: u32 = 3;
    /// Exiting: its last switch-out closes its accounts and clears its slot.
    pub const DEAD: u32 = 4;
}

/// What a blocked thread waits in: the index of its blocked time in
/// [`SchedStats::blocked_by`]. Decided in the kernel at the switch-out that blocks it,
/// from the syscall it is in ([`maps::BLOCK_CAUSE`], by syscall number), its state, and
/// for futex its operation.
pub mod block_cause {
    /// Waits for events: epoll, poll, select and their variants, accept, io_getevents,
    /// io_uring_enter (waiting for work).
    pub const EVENT_WAIT: u32 = 0;
    /// Sleeps, and waits for a signal or a child (nanosleep, pause, sigsuspend, wait4...).
    pub const SLEEP: u32 = 1;
    /// A futex wait with `FUTEX_WAIT_BITSET`: what glibc's condition variables,
    /// semaphores and joins use, so an idle pool thread waiting for a task (libuv's).
    pub const CONDITION: u32 = 2;
    /// Any other futex wait: glibc's mutexes (`FUTEX_WAIT`), PI locks.
    pub const LOCK: u32 = 3;
    /// Uninterruptible sleep inside a syscall (`TASK_UNINTERRUPTIBLE`, `D` in ps): block
    /// I/O (a read from disk, fsync), or a kernel wait (a vfork parent, a kernel lock).
    pub const UNINTERRUPTIBLE: u32 = 4;
    /// Reads, writes, sends, receives, connects that wait on a pipe, socket or terminal.
    pub const DESCRIPTOR: u32 = 5;
    /// Any other syscall.
    pub const OTHER: u32 = 6;
    /// Blocked outside a syscall: a page fault waiting for its page (a major fault), or
    /// the thread was stopped.
    pub const NO_SYSCALL: u32 = 7;
    /// Not known: blocked since before tracing started, or the cause was not recorded.
    pub const UNKNOWN: u32 = 8;
    pub const COUNT: usize = 9;
    /// In [`super::maps::BLOCK_CAUSE`] only: a futex call, [`CONDITION`] or [`LOCK`] by its
    /// operation (read from the thread's syscall registers at the switch).
    pub const FUTEX: u32 = 100;
}

/// Per-thread state machine, indexed by tid. `slot1` is the target slot + 1 (0 = not a
/// traced thread), so a lookup tells at once whether a thread is traced.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadSched {
    /// The thread owning this entry of [`maps::THREAD_SCHED`] (0: none).
    pub tid: u32,
    pub slot1: u32,
    /// One of [`sched_state`].
    pub state: u32,
    /// [`thread_flags`].
    pub flags: u32,
    pub since_ns: u64,
    /// While `BLOCKED`: what it waits in ([`block_cause`]).
    pub cause: u32,
    pub _pad: u32,
}

/// Bits of [`ThreadSched::flags`].
pub mod thread_flags {
    /// The thread found [`super::maps::THREAD_STATS`] full (counted once, as one thread).
    pub const STATS_FULL: u32 = 1;
}
const _: () = assert!(core::mem::size_of::<ThreadSched>() == 32);

impl Tagged for ThreadSched {
    fn tag(&self) -> u32 {
        self.tid
    }
}

/// Scheduling counters, per thread ([`maps::THREAD_STATS`]) and per process and CPU
/// ([`maps::SCHED_STATS`]). Times in ns.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedStats {
    /// Switched out while blocking (sleep, I/O, lock): the kernel's nvcsw.
    pub voluntary: u64,
    /// Switched out while still runnable (preempted, or yielded): the kernel's nivcsw.
    pub involuntary: u64,
    pub on_cpu_ns: u64,
    /// Time runnable but waiting for a CPU.
    pub runq_ns: u64,
    pub blocked_ns: u64,
    /// Run-queue waits measured (from a wakeup or a preemption to running again).
    pub runq_count: u64,
    pub runq_max_ns: u64,
    /// Target slot and process id (only meaningful in [`maps::THREAD_STATS`]).
    pub slot: u32,
    pub tgid: u32,
    /// Thread name (task comm), NUL-padded: read at the thread's first switch-out seen,
    /// then replaced at each rename (`task_rename`).
    pub comm: [u8; 16],
    /// Run-queue latency histogram ([`hist`] layout).
    pub runq_hist: [u64; hist::BUCKETS],
    /// `blocked_ns` by what the thread waited in, indexed by [`block_cause`]; all in
    /// [`block_cause::UNKNOWN`] when causes are not recorded.
    pub blocked_by: [u64; block_cause::COUNT],
    /// The futex word of the thread's latest condition wait, ended or not (only in
    /// [`maps::THREAD_STATS`]; 0 if none).
    pub cond_addr: u64,
    /// The futex word of its longest ended condition wait, and that wait's length (only in
    /// [`maps::THREAD_STATS`]; 0 if none): the threads of a pool wait for work on the same
    /// condition variable, so they share it (within its 16 bytes: glibc's waiters use one
    /// of two words of `__g_signals`). The longest, not the latest: a busy pool thread
    /// waits for work seldom, and in between its latest wait of this kind (glibc makes
    /// the same `FUTEX_WAIT_BITSET` for rwlocks and semaphores: OpenSSL's locks in node's
    /// crypto) is a short one on a lock that other threads share.
    pub pool_addr: u64,
    pub pool_wait_ns: u64,
}
const _: () =
    assert!(core::mem::size_of::<SchedStats>() == 104 + 8 * hist::BUCKETS + 8 * block_cause::COUNT);

impl Default for SchedStats {
    fn default() -> Self {
        Self {
            voluntary: 0,
            involuntary: 0,
            on_cpu_ns: 0,
            runq_ns: 0,
            blocked_ns: 0,
            runq_count: 0,
            runq_max_ns: 0,
            slot: 0,
            tgid: 0,
            comm: [0; 16],
            runq_hist: [0; hist::BUCKETS],
            blocked_by: [0; block_cause::COUNT],
            cond_addr: 0,
            pool_addr: 0,
            pool_wait_ns: 0,
        }
    }
}

/// Per-thread state carried from syscall entry to exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadState {
    /// The thread owning this entry of [`maps::THREADS`] (0: none).
    pub tid: u32,
    /// Index + 1 of its process's entry in [`maps::TARGETS`] (and [`maps::PROC_CALLS`]);
    /// 0 when not known.
    pub proc1: u32,
    /// When the call's timing started (entry, or the moment it blocked); 0 if untimed.
    pub start_ns: u64,
    /// Index into [`maps::SYSCALL_STATS`] (`slot * SYSCALL_SLOTS + nr`), or with
    /// [`COMPAT_IDX`] the key of [`maps::COMPAT_STATS`].
    pub stats_idx: u32,
    /// What sys_enter noted for sys_exit ([`memory::enter_flags`]); 0 when nothing.
    pub flags: u32,
    /// Low 32 bits of jiffies at the thread's latest syscall entry.
    pub tick: u32,
    /// Syscalls the thread entered during that tick.
    pub in_tick: u32,
    /// State of the thread's pseudo-random sampler (xorshift32; 0 = not seeded yet).
    pub rng: u32,
    /// [`call_status`] bits; 0 = not in a traced syscall, which is how sys_exit leaves at
    /// once for every untraced thread.
    pub status: u32,
    /// The address of the thread's syscall registers (on its kernel stack, its own while
    /// it lives): how sys_exit knows the entry it was led to is this thread's.
    pub regs: u64,
    /// The thread's process, its target slot, its [`target_flags`] and the filter's
    /// generation when they were read (see `filter::targets_generation` in tracer-ebpf):
    /// while it is unchanged, sys_enter needs no helper call and no lookup to know them.
    pub tgid: u32,
    pub slot: u32,
    pub target_flags: u32,
    pub generation: u32,
}
const _: () = assert!(core::mem::size_of::<ThreadState>() == 64);

impl Tagged for ThreadState {
    fn tag(&self) -> u32 {
        self.tid
    }
}

/// Bits of [`ThreadState::status`].
pub mod call_status {
    /// Inside a traced syscall (set at entry, cleared at exit).
    pub const IN_CALL: u32 = 1;
    /// The call blocked (switched out voluntarily): it is timed whatever the sampling.
    pub const BLOCKED: u32 = 2;
    /// Timed because its syscall had fewer than [`super::FEW_TIMED`] calls timed in its
    /// process: it stands for itself alone, not for a sample.
    pub const FORCED: u32 = 4;
    /// The thread loops on a wait ([`crate::loops`]): its calls are counted in its
    /// iteration. Kept from call to call (the others are per call).
    pub const LOOPER: u32 = 8;
    /// The call is one of a loop's waits ([`crate::loops::WAITS`]): told at entry, so
    /// that sys_exit tests a bit.
    pub const WAIT: u32 = 32;
    /// Selected for the call stream at entry: sys_exit sends it (see `stream.rs`).
    pub const STREAMED: u32 = 16;
}

/// Beyond the sampling, each syscall of each traced process has at least this many calls
/// timed (its first ones), so that a rare call of a busy thread (an execve, a dup2) still
/// has a latency.
pub const FEW_TIMED: u8 = 8;

/// How syscall latency is sampled; set by userspace at load time ([`globals::TIMING`]).
///
/// Reading the clock is the dearest part of the syscall hooks (two reads per call, about
/// 35 ns each on a VM where `rdtsc` is slow). So each thread times its first `budget`
/// calls of every scheduler tick, then each call with probability 1/`every` (a per-thread
/// pseudo-random draw, so that periodic call patterns cannot line up with the sampling),
/// counted `every` times in the histogram. Calls that block are always timed: from entry
/// if sampled, otherwise from the moment they blocked. Counts and errors are exact for
/// every call. `every == 1` times every call exactly.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallTiming {
    /// Calls per thread per tick timed exactly.
    pub budget: u32,
    /// Beyond the budget, one call in `every` is timed; a power of two.
    pub every: u32,
}
const _: () = assert!(core::mem::size_of::<SyscallTiming>() == 8);

impl SyscallTiming {
    /// Every call timed.
    pub const EXACT: Self = Self {
        budget: 0,
        every: 1,
    };
    /// The default: up to 32 calls per thread per tick (8000/s at HZ=250) timed exactly,
    /// then 1 in 16.
    pub const SAMPLED: Self = Self {
        budget: 32,
        every: 16,
    };
}

/// Aggregate for one (process, syscall) on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallStats {
    /// Every call (exact).
    pub calls: u64,
    /// Every failed call (exact).
    pub errors: u64,
    /// Calls whose latency was measured (see [`SyscallTiming`]).
    pub timed: u64,
    /// Sum of latencies, each timed call weighted by the calls it stands for (exact when
    /// `timed == calls`).
    pub total_ns: u64,
    /// Largest measured latency.
    pub max_ns: u64,
    /// Latency histogram of weighted counts; see [`hist`] for the bucket layout.
    pub hist: [u64; hist::BUCKETS],
}
const _: () = assert!(core::mem::size_of::<SyscallStats>() == 40 + 8 * hist::BUCKETS);

impl Default for SyscallStats {
    fn default() -> Self {
        Self {
            calls: 0,
            errors: 0,
            timed: 0,
            total_ns: 0,
            max_ns: 0,
            hist: [0; hist::BUCKETS],
        }
    }
}

/// Key of [`maps::ERRNOS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrnoKey {
    /// Same index as in [`maps::SYSCALL_STATS`].
    pub stats_idx: u32,
    /// Positive errno value (1..=4095).
    pub errno: u32,
}
const _: () = assert!(core::mem::size_of::<ErrnoKey>() == 8);

#[cfg(feature = "user")]
mod user {
    // SAFETY: all of these are repr(C), Copy, made only of integers, with no padding.
    unsafe impl aya::Pod for super::ThreadState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ProcCalls {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SyscallTiming {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SyscallStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ErrnoKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::KernelOffsets {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ThreadSched {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::loops::LoopState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::loops::LoopConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::threads::ThreadCallKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::threads::ThreadCalls {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::TargetEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SelectConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ExeMatch {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SchedStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::memory::MemSyscalls {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::memory::RssSnapshot {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::memory::MemConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::stream::StreamConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::stream::CallRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::stream::CallStart {}
}
