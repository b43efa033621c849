//! Loads the kernel programs, sizes their maps, attaches them, and owns the links: dropping
//! [`Probes`] (or the process ending, however it ends) detaches everything, since nothing is
//! pinned. Loading and attaching are separate steps so that the maps can be filled (targets,
//! the state of existing threads) before the first hook runs.
use std::os::fd::AsFd;

use anyhow::{Context, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, IterableMap, MapData, ProgramArray},
    programs::{ProgramError, RawTracePoint},
    util::KernelVersion,
};
use tracer_common::{
    KernelOffsets, MAX_TARGETS, MAX_THREADS, ProcCalls, SYSCALL_SLOTS, SelectConfig, SyscallTiming,
    TargetEntry, globals,
    loops::{LoopConfig, MAX_LOOPS},
    maps,
    memory::{MemConfig, class},
    stream::StreamConfig,
    table, target_flags,
    threads::MAX_THREAD_CALLS,
};

use crate::{
    cli::Section,
    model::{blocked::cause_of, syscall_name},
};

/// The kernel programs, built by `cargo xtask build-ebpf` and embedded at compile time
/// (empty when it was not built: the library still builds, for the fuzz targets, and the
/// binary refuses to, in `main.rs`).
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer.bpf.o"));

/// Which programs to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Programs {
    /// The real ones.
    Tracer,
    /// Empty programs on the same hooks (benchmark floor).
    Floor,
}

/// A program, its raw tracepoint, the empty program on the same hook for the floor, and
/// how many of the tracepoint's arguments the program reads at most (a kernel passing fewer
/// refuses the attach; arguments that only some kernels pass are read behind a check of
/// [`KernelOffsets`]).
type Hook = (&'static str, &'static str, &'static str, usize);

/// The programs of a section, in the order they attach.
fn hooks(section: Section) -> &'static [Hook] {
    match section {
        // task_new, in every section and attached first, forgets what an ended task left
        // under a new task's stack and ids (`filter::task_new` on the kernel side): the
        // syscall hooks' cache of untraced threads, per-thread state, the filter's entry.
        // sys_switch times syscalls that block (see `SyscallTiming`); the sched section's
        // own sched_switch does that when it is selected. Rare events have a second
        // program (its name ends in 2) for the runs of the first that the kernel skips
        // (see the kernel side's `twin`).
        Section::Syscalls => &[
            ("task_new", "task_newtask", "floor_newtask", 1),
            ("task_new2", "task_newtask", "floor_newtask2", 1),
            ("sys_enter", "sys_enter", "floor_enter", 2),
            ("sys_exit", "sys_exit", "floor_exit", 2),
            ("sys_switch", "sched_switch", "floor_switch", 3),
        ],
        Section::Sched => &[
            ("task_new", "task_newtask", "floor_newtask", 1),
            ("task_new2", "task_newtask", "floor_newtask2", 1),
            ("sched_switch", "sched_switch", "floor_switch", 3),
            ("sched_wakeup", "sched_wakeup", "floor_wakeup", 1),
            ("sched_wake_new", "sched_wakeup_new", "floor_wake_new", 1),
            ("task_rename", "task_rename", "floor_rename", 2),
        ],
        Section::Life => &[
            ("task_new", "task_newtask", "floor_newtask", 1),
            ("task_new2", "task_newtask", "floor_newtask2", 1),
            ("proc_fork", "sched_process_fork", "floor_fork", 2),
            ("proc_fork2", "sched_process_fork", "floor_fork2", 2),
            ("proc_exec", "sched_process_exec", "floor_exec", 2),
            ("proc_exec2", "sched_process_exec", "floor_exec2", 2),
            ("proc_exit", "sched_process_exit", "floor_pexit", 1),
            ("proc_exit2", "sched_process_exit", "floor_pexit2", 1),
            ("proc_signal", "signal_generate", "floor_signal", 5),
            ("proc_signal2", "signal_generate", "floor_signal2", 5),
        ],
        // The syscall programs fold memory and descriptor syscalls in (with
        // MEMORY.enabled = 1), so they are shared with the syscalls section. oom_sigkill
        // only where mark_victim passes a pid (see `oom::victim_task`).
        Section::Memory => &[
            ("task_new", "task_newtask", "floor_newtask", 1),
            ("task_new2", "task_newtask", "floor_newtask2", 1),
            ("sys_enter", "sys_enter", "floor_enter", 2),
            ("sys_exit", "sys_exit", "floor_exit", 2),
            ("sys_switch", "sched_switch", "floor_switch", 3),
            ("rss_stat", "rss_stat", "floor_rss_stat", 1),
            ("oom_sigkill", "signal_generate", "floor_signal", 3),
            ("mark_victim", "mark_victim", "floor_oom", 1),
        ],
    }
}

/// The second programs of the life events' hooks: an event goes unreported only where the
/// kernel skipped the run of both programs for it, so the runs it skipped of these bound
/// the events missed (see the kernel side's `twin`).
pub const LIFE_SECONDS: &[&str] = &["proc_fork2", "proc_exec2", "proc_exit2", "proc_signal2"];

/// The tracepoints a section attaches to, with the number of arguments read.
pub fn tracepoints(section: Section) -> Vec<(&'static str, usize)> {
    hooks(section)
        .iter()
        .map(|&(_, tp, _, args)| (tp, args))
        .collect()
}

pub struct Probes {
    ebpf: Ebpf,
    targets: Array<MapData, TargetEntry>,
    /// Each traced process's own counts, entry for entry beside `targets`.
    proc_calls: Array<MapData, ProcCalls>,
    /// Entries of each per-id table (see [`tracer_common::table`]).
    table_entries: u32,
    /// Loaded programs and their tracepoints, attached by [`Probes::attach`].
    loaded: Vec<(&'static str, &'static str)>,
}

/// Whether hash maps that allocate by use are safe in tracer's programs: from Linux 6.1,
/// whose BPF memory allocator serves any context. Before, a tracing program's insert into
/// such a map allocates with `GFP_ATOMIC` (from `sched_switch`, under the runqueue lock), and
/// loading one makes the kernel warn with a stack trace (`WARN_ONCE`: "trace type BPF
/// program uses run-time allocation"), so every map stays preallocated.
pub fn by_use() -> bool {
    KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 1, 0))
}

/// The maps loaded allocated by use where [`by_use`]: the per-thread maps of `--threads`,
/// whose memory then follows the threads traced (9 MiB preallocated, 0.6 MiB for one thread).
const BY_USE: [&str; 2] = [maps::THREAD_STATS, maps::THREAD_CALLS];

/// The kernel's flag for a hash map whose elements are allocated as they are inserted.
const BPF_F_NO_PREALLOC: u32 = 1;

/// Offset of `map_flags` in a legacy map definition (`struct bpf_map_def`: type, key
/// size, value size, max entries, flags, ...), which aya-ebpf writes in the `maps` section.
const MAP_FLAGS_AT: usize = 16;

/// `object` with `BPF_F_NO_PREALLOC` set in the definitions of the maps named `names`
/// (aya's loader takes a map's flags from the object only), as 8-byte-aligned words (the
/// ELF parser wants the alignment): the object is the first `object.len()` bytes.
fn with_no_prealloc(object: &[u8], names: &[&str]) -> Result<Vec<u64>> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let file = object::File::parse(object).context("cannot read tracer's eBPF object")?;
    let section = file
        .section_by_name("maps")
        .context("tracer's eBPF object has no maps section")?;
    let (base, _) = section
        .file_range()
        .context("tracer's eBPF object's maps section has no data")?;
    let mut at = Vec::new();
    for name in names {
        let sym = file
            .symbols()
            .find(|s| s.name() == Ok(name) && s.section_index() == Some(section.index()))
            .with_context(|| format!("tracer's eBPF object has no map {name}"))?;
        at.push(base as usize + sym.address() as usize + MAP_FLAGS_AT);
    }
    let mut words = vec![0u64; object.len().div_ceil(8)];
    let bytes = as_bytes_mut(&mut words);
    bytes[..object.len()].copy_from_slice(object);
    for i in at {
        let field: [u8; 4] = bytes
            .get(i..i + 4)
            .context("a map definition beyond tracer's eBPF object")?
            .try_into()?;
        let flags = u32::from_le_bytes(field) | BPF_F_NO_PREALLOC;
        bytes[i..i + 4].copy_from_slice(&flags.to_le_bytes());
    }
    Ok(words)
}

fn as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no padding and any byte is a valid u8; the length is the words'.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
}

fn as_bytes(words: &[u64], len: usize) -> &[u8] {
    // SAFETY: as above; `len` is at most the words' length in bytes (checked).
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast(), len.min(words.len() * 8)) }
}

/// Largest process id + 1 that the kernel hands out now; the per-id tables are sized from
/// it (up to [`tracer_common::table::MAX_ENTRIES`]).
pub fn pid_max() -> Result<u32> {
    let s = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .context("cannot read /proc/sys/kernel/pid_max")?;
    s.trim()
        .parse()
        .context("cannot parse /proc/sys/kernel/pid_max")
}

/// How to load.
pub struct LoadOptions<'a> {
    pub programs: Programs,
    pub sections: &'a [Section],
    /// Number of traced processes given by the user.
    pub slots: u32,
    pub offsets: KernelOffsets,
    pub follow: bool,
    /// Each thread's own scheduling counters (`--threads`).
    pub per_thread: bool,
    pub timing: SyscallTiming,
    /// The selectors' configuration, when there are selectors.
    pub select: Option<SelectConfig>,
    /// The call stream's configuration and ring size (`--trace`), when asked for.
    pub stream: Option<(StreamConfig, u32)>,
    /// An event loop's iteration this long is a stall (`--stall`; 0: none).
    pub stall_ns: u64,
}

/// Whether the syscall hooks follow event loops: they run when the syscalls or the
/// memory section is selected.
pub fn follows_loops(sections: &[Section]) -> bool {
    sections.contains(&Section::Syscalls) || sections.contains(&Section::Memory)
}

/// The memory section's scan of the descriptor table, tail-called by sys_enter.
pub const FD_SCAN_PROGRAM: &str = "sys_enter_fds";

/// The selectors' hooks: loaded (and attached first, before the life section's own
/// `sched_process_exec`) only when there are selectors.
const SELECT_HOOKS: &[Hook] = &[
    ("select_exec", "sched_process_exec", "floor_exec", 3),
    ("select_exec2", "sched_process_exec", "floor_exec2", 3),
    ("select_cgroup", "cgroup_attach_task", "floor_cgroup", 3),
    ("select_cgroup2", "cgroup_attach_task", "floor_cgroup2", 3),
    ("select_rename", "task_rename", "floor_rename", 2),
    ("select_rename2", "task_rename", "floor_rename2", 2),
];

/// The tracepoints the selectors' hooks attach to, with the number of arguments read.
pub fn select_tracepoints() -> Vec<(&'static str, usize)> {
    SELECT_HOOKS
        .iter()
        .map(|&(_, tp, _, args)| (tp, args))
        .collect()
}

impl Probes {
    /// Loads the programs of the chosen sections into the kernel (the verifier runs here),
    /// without attaching them.
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        if EBPF_OBJECT.is_empty() {
            bail!("the eBPF object is not built: run `cargo xtask build` (it builds it first)");
        }
        let table_entries = table::entries(pid_max()?);
        raise_memlock_limit();
        let follow = u32::from(opts.follow);
        let per_thread = opts.per_thread && opts.sections.contains(&Section::Sched);
        let patched = if per_thread && by_use() {
            Some(with_no_prealloc(EBPF_OBJECT, &BY_USE)?)
        } else {
            None
        };
        let object = patched
            .as_deref()
            .map_or(EBPF_OBJECT, |w| as_bytes(w, EBPF_OBJECT.len()));
        let loop_config = LoopConfig {
            enabled: u32::from(follows_loops(opts.sections) && opts.programs == Programs::Tracer),
            _pad: 0,
            stall_ns: opts.stall_ns,
        };
        // Per-thread syscall tables: with --threads (which needs sched) and the syscall hooks.
        let thread_calls =
            per_thread && follows_loops(opts.sections) && opts.programs == Programs::Tracer;
        // The causes of blocked time come from the syscall hooks' per-thread state.
        let block_causes = opts.sections.contains(&Section::Sched)
            && (opts.sections.contains(&Section::Syscalls)
                || opts.sections.contains(&Section::Memory))
            && opts.programs == Programs::Tracer;
        let slots = opts.slots.clamp(1, MAX_TARGETS);
        let memory = MemConfig {
            enabled: u32::from(opts.sections.contains(&Section::Memory)),
            nr_dup2: sysno("dup2")?,
            nr_dup3: sysno("dup3")?,
            nr_close_range: sysno("close_range")?,
            nr_execve: sysno("execve")?,
            nr_execveat: sysno("execveat")?,
            nr32_dup2: sysno32("dup2")?,
            nr32_dup3: sysno32("dup3")?,
            nr32_close_range: sysno32("close_range")?,
            nr32_execve: sysno32("execve")?,
            nr32_execveat: sysno32("execveat")?,
        };
        let stream = opts
            .stream
            .filter(|_| opts.programs == Programs::Tracer)
            .map_or_else(StreamConfig::default, |(c, _)| c);
        let (stream_ring, stream_pending) = match opts.stream {
            Some((_, bytes)) if stream.enabled != 0 => (bytes, MAX_THREADS),
            _ => (page_size(), 1),
        };
        // No BTF for aya: the object has no CO-RE relocations, and parsing vmlinux's BTF
        // would double tracer's memory. The offsets it needs come in through OFFSETS.
        let mut ebpf = EbpfLoader::new()
            .btf(None)
            .override_global(globals::OFFSETS, &opts.offsets, true)
            .override_global(globals::FOLLOW, &follow, true)
            .override_global(globals::PER_THREAD, &u32::from(per_thread), true)
            .override_global(globals::MEMORY, &memory, true)
            .override_global(globals::TIMING, &opts.timing, true)
            .override_global(globals::BLOCK_CAUSES, &u32::from(block_causes), true)
            .override_global(globals::LOOP_CONFIG, &loop_config, true)
            .override_global(globals::THREAD_CALLS_ON, &u32::from(thread_calls), true)
            .override_global(globals::SELECT, &opts.select.unwrap_or_default(), true)
            .override_global(globals::TABLE_ENTRIES, &table_entries, true)
            .override_global(globals::STREAM, &stream, true)
            // Without --trace the stream's maps shrink to what the kernel allows.
            .map_max_entries(maps::STREAM_RING, stream_ring)
            .map_max_entries(maps::STREAM_PENDING, stream_pending)
            .map_max_entries(
                maps::STREAM_START,
                if stream.enabled != 0 {
                    table_entries
                } else {
                    1
                },
            )
            // Loop threads only where followed (the LRU is preallocated: 1.4 MiB).
            .map_max_entries(
                maps::LOOPS,
                if loop_config.enabled != 0 {
                    MAX_LOOPS
                } else {
                    1
                },
            )
            .map_max_entries(
                maps::THREAD_CALLS,
                if thread_calls { MAX_THREAD_CALLS } else { 1 },
            )
            .map_max_entries(maps::TARGETS, table_entries)
            .map_max_entries(maps::PROC_CALLS, table_entries)
            .map_max_entries(maps::THREADS, table_entries)
            .map_max_entries(maps::THREAD_SCHED, table_entries)
            .map_max_entries(maps::SYSCALL_STATS, slots * SYSCALL_SLOTS)
            .map_max_entries(maps::SCHED_STATS, slots)
            .map_max_entries(maps::THREAD_STATS, if per_thread { MAX_THREADS } else { 1 })
            .load(object)
            .map_err(|e| anyhow!("cannot load tracer's kernel programs: {}", one_line(&e)))?;
        if memory.enabled != 0 {
            fill_mem_class(&mut ebpf)?;
        }
        if block_causes {
            fill_block_cause(&mut ebpf)?;
        }
        let mut loaded: Vec<(&'static str, &'static str)> = Vec::new();
        if opts.select.is_some() && opts.programs == Programs::Tracer {
            for &(prog, tp, _, _) in SELECT_HOOKS {
                load_raw_tp(&mut ebpf, prog)?;
                loaded.push((prog, tp));
            }
        }
        for &section in opts.sections {
            for &(real, tp, floor, _) in hooks(section) {
                // Not needed when every call is timed from entry, or when the sched
                // section's sched_switch does it.
                if real == "sys_switch"
                    && (opts.timing.every == 1 || opts.sections.contains(&Section::Sched))
                {
                    continue;
                }
                if real == "oom_sigkill" && opts.offsets.oom_victim_is_pid == 0 {
                    continue;
                }
                let prog = if opts.programs == Programs::Floor {
                    floor
                } else {
                    real
                };
                // The memory section shares sys_enter/sys_exit with the syscalls section.
                if loaded.iter().any(|&(p, _)| p == prog) {
                    continue;
                }
                load_raw_tp(&mut ebpf, prog)?;
                loaded.push((prog, tp));
            }
        }
        // The memory section's descriptor scan, which sys_enter tail-calls (loaded, not
        // attached).
        if memory.enabled != 0 && opts.programs == Programs::Tracer {
            load_raw_tp(&mut ebpf, FD_SCAN_PROGRAM)?;
            let fd = ebpf
                .program(FD_SCAN_PROGRAM)
                .ok_or_else(|| anyhow!("program {FD_SCAN_PROGRAM} missing from the eBPF object"))?
                .fd()?
                .try_clone()?;
            let mut scan = ProgramArray::try_from(
                ebpf.map_mut(maps::FD_SCAN)
                    .ok_or_else(|| anyhow!("map {} missing", maps::FD_SCAN))?,
            )?;
            scan.set(0, &fd, 0)
                .map_err(|e| anyhow!("cannot set up the descriptor scan: {}", one_line(&e)))?;
        }
        let targets = Array::try_from(
            ebpf.take_map(maps::TARGETS)
                .ok_or_else(|| anyhow!("map {} missing", maps::TARGETS))?,
        )?;
        let proc_calls = Array::try_from(
            ebpf.take_map(maps::PROC_CALLS)
                .ok_or_else(|| anyhow!("map {} missing", maps::PROC_CALLS))?,
        )?;
        Ok(Self {
            ebpf,
            targets,
            proc_calls,
            table_entries,
            loaded,
        })
    }

    /// Attaches every loaded program to its tracepoint, in the order of [`hooks`].
    pub fn attach(&mut self) -> Result<()> {
        for &(prog, tp) in &self.loaded {
            let p: &mut RawTracePoint = self
                .ebpf
                .program_mut(prog)
                .ok_or_else(|| anyhow!("program {prog} missing from the eBPF object"))?
                .try_into()?;
            p.attach(tp).map_err(|e| {
                anyhow!(
                    "cannot attach to tracepoint {tp} (missing kernel feature?): {}",
                    one_line(&e)
                )
            })?;
        }
        Ok(())
    }

    /// Starts tracing process `tgid` under `slot`.
    pub fn add_target(&mut self, tgid: u32, slot: u32) -> Result<()> {
        self.add_target_with(tgid, slot, 0)
    }

    /// Starts tracing process `tgid` under `slot`, with [`target_flags`] (a selector's).
    pub fn add_target_with(&mut self, tgid: u32, slot: u32, flags: u32) -> Result<()> {
        // A process the kernel side took in already (a child followed at its fork, found
        // again in /proc) keeps its entry, and the counts it has made since.
        let known = crate::collect::table_get(&self.targets, self.table_entries, tgid)
            .with_context(|| format!("cannot add PID {tgid} to the kernel filter"))?;
        if known.is_some_and(|e| !e.reusable()) {
            return Ok(());
        }
        let entry = |index| TargetEntry {
            tgid,
            slot1: slot + 1,
            flags: flags
                | if is_32_bit(tgid) {
                    target_flags::COMPAT
                } else {
                    0
                },
            index,
        };
        let placed = crate::collect::table_put(
            &mut self.targets,
            self.table_entries,
            tgid,
            entry,
            TargetEntry::reusable,
        )
        .with_context(|| format!("cannot add PID {tgid} to the kernel filter"))?;
        let Some(index) = placed else {
            bail!("cannot add PID {tgid} to the kernel filter: its set of entries is full");
        };
        // Its own counts, from zero, under its start as /proc gives it (clock ticks).
        let start_ns = crate::collect::proc::start_and_parent(tgid)
            .map_or(0, |(ticks, _)| ticks * crate::run::ns_per_clock_tick());
        let own = ProcCalls {
            tgid,
            start_ns,
            ..ProcCalls::default()
        };
        self.proc_calls
            .set(index, own, 0)
            .with_context(|| format!("cannot add PID {tgid} to the kernel filter"))?;
        Ok(())
    }

    /// Another handle on the map of each traced process's own counts, for the reader.
    pub fn proc_calls_map(&self) -> Result<MapData> {
        let fd = IterableMap::map(&self.proc_calls)
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot open the map of per-process counts")?;
        MapData::from_fd(fd).context("cannot open the map of per-process counts")
    }

    /// Entries of each per-id table.
    pub fn table_entries(&self) -> u32 {
        self.table_entries
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Each loaded program, with where the kernel shows its state, its count of skipped
    /// runs included (`/proc/self/fdinfo/<program fd>`).
    pub fn fdinfo_paths(&self) -> Result<Vec<(&'static str, std::path::PathBuf)>> {
        use std::os::fd::{AsFd, AsRawFd};
        let mut paths = Vec::new();
        for &(prog, _) in &self.loaded {
            let fd = self
                .ebpf
                .program(prog)
                .ok_or_else(|| anyhow!("program {prog} missing from the eBPF object"))?
                .fd()?;
            paths.push((
                prog,
                format!("/proc/self/fdinfo/{}", fd.as_fd().as_raw_fd()).into(),
            ));
        }
        Ok(paths)
    }
}

/// What each memory or descriptor syscall does, by name (x86_64 numbers from the
/// `syscalls` crate): the kernel side's [`tracer_common::maps::MEM_CLASS`] table.
/// Descriptors returned by ioctls are not seen; /proc's count (`proc_now`) shows any drift.
pub const MEM_SYSCALLS: &[(&str, u32)] = &[
    ("brk", class::BRK),
    ("mmap", class::MMAP),
    ("munmap", class::MUNMAP),
    ("mremap", class::MREMAP),
    ("open", class::FD_NEW),
    ("openat", class::FD_NEW),
    ("openat2", class::FD_NEW),
    ("creat", class::FD_NEW),
    ("open_by_handle_at", class::FD_NEW),
    ("dup", class::FD_NEW),
    ("socket", class::FD_NEW),
    ("accept", class::FD_NEW),
    ("accept4", class::FD_NEW),
    ("eventfd", class::FD_NEW),
    ("eventfd2", class::FD_NEW),
    ("epoll_create", class::FD_NEW),
    ("epoll_create1", class::FD_NEW),
    ("timerfd_create", class::FD_NEW),
    ("inotify_init", class::FD_NEW),
    ("inotify_init1", class::FD_NEW),
    ("fanotify_init", class::FD_NEW),
    ("memfd_create", class::FD_NEW),
    ("memfd_secret", class::FD_NEW),
    ("userfaultfd", class::FD_NEW),
    ("perf_event_open", class::FD_NEW),
    ("pidfd_open", class::FD_NEW),
    ("pidfd_getfd", class::FD_NEW),
    ("open_tree", class::FD_NEW),
    ("fsopen", class::FD_NEW),
    ("fsmount", class::FD_NEW),
    ("fspick", class::FD_NEW),
    ("io_uring_setup", class::FD_NEW),
    ("mq_open", class::FD_NEW),
    ("landlock_create_ruleset", class::FD_NEW),
    ("pipe", class::FD_PAIR),
    ("pipe2", class::FD_PAIR),
    ("socketpair", class::FD_PAIR),
    ("close", class::FD_CLOSE),
    ("fcntl", class::FD_FCNTL),
    ("signalfd", class::FD_SIGNALFD),
    ("signalfd4", class::FD_SIGNALFD),
    ("dup2", class::FD_DUP2),
    ("dup3", class::FD_DUP2),
    ("close_range", class::FD_CLOSE_MANY),
    ("recvmsg", class::FD_RECVMSG),
    ("recvmmsg", class::FD_RECVMMSG),
    ("execve", class::FD_CLOSE_MANY),
    ("execveat", class::FD_CLOSE_MANY),
];

/// For 32-bit syscalls the same names (those i386 has: it has no `accept`, for one) with
/// i386 numbers, and these, where i386 differs.
pub const MEM_SYSCALLS_I386: &[(&str, u32)] = &[
    // The old mmap takes a pointer to its arguments; mmap2 takes them in registers (with
    // the offset in pages, which does not matter here).
    ("mmap", class::MMAP_STRUCT32),
    ("mmap2", class::MMAP),
    ("fcntl64", class::FD_FCNTL),
    ("socketcall", class::FD_SOCKETCALL),
];

fn fill_mem_class(ebpf: &mut Ebpf) -> Result<()> {
    let mut table: Array<&mut MapData, u32> = Array::try_from(
        ebpf.map_mut(maps::MEM_CLASS)
            .ok_or_else(|| anyhow!("map {} missing", maps::MEM_CLASS))?,
    )?;
    for &(name, c) in MEM_SYSCALLS {
        table.set(sysno(name)?, c, 0)?;
        if let Ok(nr) = sysno32(name) {
            table.set(SYSCALL_SLOTS + nr, c, 0)?;
        }
    }
    for &(name, c) in MEM_SYSCALLS_I386 {
        table.set(SYSCALL_SLOTS + sysno32(name)?, c, 0)?;
    }
    Ok(())
}

/// Each syscall's cause of blocked time (`model::blocked::cause_of`), by number, the i386
/// ones after the x86_64 ones.
fn fill_block_cause(ebpf: &mut Ebpf) -> Result<()> {
    let mut table: Array<&mut MapData, u32> = Array::try_from(
        ebpf.map_mut(maps::BLOCK_CAUSE)
            .ok_or_else(|| anyhow!("map {} missing", maps::BLOCK_CAUSE))?,
    )?;
    for nr in 0..2 * SYSCALL_SLOTS {
        table.set(nr, cause_of(&syscall_name(nr)), 0)?;
    }
    Ok(())
}

/// The x86_64 number of a syscall, from the `syscalls` crate's table.
fn sysno(name: &str) -> Result<u32> {
    let nr: syscalls::Sysno = name
        .parse()
        .map_err(|_| anyhow!("unknown syscall {name}"))?;
    Ok(nr.id() as u32)
}

/// The i386 number of a syscall (for calls through the 32-bit entry).
fn sysno32(name: &str) -> Result<u32> {
    let nr: syscalls::x86::Sysno = name
        .parse()
        .map_err(|_| anyhow!("unknown i386 syscall {name}"))?;
    Ok(nr.id() as u32)
}

/// Whether a process runs a 32-bit program (its executable's ELF class): all its calls
/// are then asked which table they belong to (see `target_flags::COMPAT`). A process that
/// cannot be read is taken as 64-bit; its timed calls still tell.
fn is_32_bit(pid: u32) -> bool {
    use std::io::Read;
    let mut ident = [0u8; 5];
    std::fs::File::open(format!("/proc/{pid}/exe"))
        .and_then(|mut f| f.read_exact(&mut ident))
        .is_ok_and(|()| &ident[..4] == b"\x7fELF" && ident[4] == 1)
}

/// Before Linux 5.11 the kernel charges BPF maps to RLIMIT_MEMLOCK (64 KiB by default);
/// later kernels charge the memory cgroup and ignore it. Raised as far as allowed; if that
/// is not enough, loading says so.
fn raise_memlock_limit() {
    use nix::sys::resource::{Resource, setrlimit};
    let inf = nix::sys::resource::RLIM_INFINITY;
    let _ = setrlimit(Resource::RLIMIT_MEMLOCK, inf, inf);
}

fn load_raw_tp(ebpf: &mut Ebpf, prog: &str) -> Result<()> {
    let p: &mut RawTracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| anyhow!("program {prog} missing from the eBPF object"))?
        .try_into()?;
    p.load().map_err(|e| match &e {
        ProgramError::LoadError { verifier_log, .. } => {
            if std::env::var_os("TRACER_DEBUG").is_some() {
                eprintln!("{verifier_log}");
            }
            anyhow!(
                "the kernel's verifier rejected program {prog}: {}; TRACER_DEBUG=1 prints its whole log",
                verifier_reason(&verifier_log.to_string())
            )
        }
        _ => anyhow!("the kernel rejected program {prog}: {}", one_line(&e)),
    })
}

/// The line of a verifier log that says why it refused the program: the last line that is
/// neither an instruction, register state, nor the closing statistics; with the
/// instruction it refused, when the log shows it.
fn verifier_reason(log: &str) -> String {
    let is_insn = |l: &str| {
        l.split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let is_stats = |l: &str| {
        [
            "processed ",
            "verification time",
            "stack depth",
            "max_states_per_insn",
        ]
        .iter()
        .any(|p| l.starts_with(p))
    };
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_stats(l))
        .collect();
    let Some(i) = lines.iter().rposition(|l| !is_insn(l)) else {
        return "no reason in its log".to_string();
    };
    match i.checked_sub(1).map(|j| lines[j]).filter(|l| is_insn(l)) {
        Some(insn) => format!("{} (at {insn})", lines[i]),
        None => lines[i].to_string(),
    }
}

/// The first line of an error, with its sources: aya puts whole verifier logs in some.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string().lines().next().unwrap_or_default().to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(s.to_string().lines().next().unwrap_or_default());
        src = s.source();
    }
    msg
}

/// The page size (the smallest ring buffer the kernel takes).
fn page_size() -> u32 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u32
}

#[cfg(test)]
mod tests {
    use super::verifier_reason;

    /// The flags of each map definition in an object's `maps` section, by name.
    #[cfg(not(tracer_missing_ebpf))]
    fn map_flags(object: &[u8]) -> std::collections::BTreeMap<String, u32> {
        use object::{Object, ObjectSection, ObjectSymbol};
        let file = object::File::parse(object).unwrap();
        let maps = file.section_by_name("maps").unwrap();
        let data = maps.data().unwrap();
        file.symbols()
            .filter(|s| s.section_index() == Some(maps.index()))
            .map(|s| {
                let at = s.address() as usize + super::MAP_FLAGS_AT;
                let flags = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
                (s.name().unwrap().to_string(), flags)
            })
            .collect()
    }

    /// The per-thread maps, and only they, are loaded allocated by use where the kernel
    /// allows it; the object is otherwise unchanged.
    #[cfg(not(tracer_missing_ebpf))]
    #[test]
    fn only_the_per_thread_maps_are_set_to_allocate_by_use() {
        let before = map_flags(super::EBPF_OBJECT);
        let words = super::with_no_prealloc(super::EBPF_OBJECT, &super::BY_USE).unwrap();
        let patched = super::as_bytes(&words, super::EBPF_OBJECT.len());
        let after = map_flags(patched);
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        );
        for (name, flags) in &after {
            let want = if super::BY_USE.contains(&name.as_str()) {
                before[name] | super::BPF_F_NO_PREALLOC
            } else {
                before[name]
            };
            assert_eq!(*flags, want, "{name}");
        }
        assert!(before.len() > 20 && super::BY_USE.iter().all(|m| before[*m] == 0));
        let changed = patched
            .iter()
            .zip(super::EBPF_OBJECT)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, super::BY_USE.len());
    }

    /// The message layouts the kernel side reads at `recvmsg`/`recvmmsg` are the ABI's.
    #[test]
    fn message_layouts_are_the_abis() {
        use std::mem::{offset_of, size_of};
        use tracer_common::memory::*;
        let l = MsgLayout::X86_64;
        assert_eq!(offset_of!(libc::msghdr, msg_control) as u64, l.control);
        assert_eq!(
            offset_of!(libc::msghdr, msg_controllen) as u64,
            l.controllen
        );
        assert_eq!(size_of::<libc::mmsghdr>() as u64, l.mmsghdr);
        assert_eq!(size_of::<libc::cmsghdr>() as u64, l.cmsghdr);
        assert_eq!(offset_of!(libc::cmsghdr, cmsg_level) as u64, l.word);
        assert_eq!(offset_of!(libc::cmsghdr, cmsg_type), 12);
        // SAFETY: CMSG_LEN only computes a length.
        assert_eq!(u64::from(unsafe { libc::CMSG_LEN(0) }), l.cmsghdr);
        // The kernel's compat structs (include/net/compat.h): every member 32 bits.
        #[repr(C)]
        struct CompatMsghdr {
            _name: u32,
            _namelen: u32,
            _iov: u32,
            _iovlen: u32,
            control: u32,
            controllen: u32,
            _flags: u32,
        }
        #[repr(C)]
        struct CompatMmsghdr {
            _hdr: CompatMsghdr,
            _len: u32,
        }
        #[repr(C)]
        struct CompatCmsghdr {
            _len: u32,
            level: i32,
            _type: i32,
        }
        let c = MsgLayout::I386;
        assert_eq!(offset_of!(CompatMsghdr, control) as u64, c.control);
        assert_eq!(offset_of!(CompatMsghdr, controllen) as u64, c.controllen);
        assert_eq!(size_of::<CompatMmsghdr>() as u64, c.mmsghdr);
        assert_eq!(size_of::<CompatCmsghdr>() as u64, c.cmsghdr);
        assert_eq!(offset_of!(CompatCmsghdr, level) as u64, c.word);
        assert_eq!(libc::SOL_SOCKET as u32, SOL_SOCKET);
        assert_eq!(libc::SCM_RIGHTS as u32, SCM_RIGHTS);
    }

    /// Every memory and descriptor syscall resolves in both tables; the i386 numbers are
    /// i386's (not x86_64's: `close` is 6 there, 3 here).
    #[test]
    fn memory_syscalls_have_numbers_in_both_abis() {
        use super::{MEM_SYSCALLS, MEM_SYSCALLS_I386, sysno, sysno32};
        for &(name, _) in MEM_SYSCALLS {
            sysno(name).unwrap();
        }
        for &(name, _) in MEM_SYSCALLS_I386 {
            sysno32(name).unwrap();
        }
        assert_eq!(sysno32("close").unwrap(), 6);
        assert_eq!(sysno32("mmap2").unwrap(), 192);
        assert_eq!(sysno32("socketcall").unwrap(), 102);
        assert_eq!(sysno32("execve").unwrap(), 11);
        assert!(sysno32("accept").is_err());
    }

    #[test]
    fn the_verifiers_reason_is_the_line_that_says_why() {
        // Linux 6.1, cut: a warning first, the reason and statistics last.
        let log = "\
trace type programs with run-time allocated hash maps are unsafe.
0: R1=ctx(off=0,imm=0) R10=fp0
0: (bf) r9 = r1                       ; R1=ctx(off=0,imm=0) R9_w=ctx(off=0,imm=0)
418: (0f) r0 += r2                    ; R0_w=scalar() R2_w=scalar(umin=32,umax=24)
419: (05) goto pc+167
587: (79) r1 = *(u64 *)(r0 +0)
R0 invalid mem access 'scalar'
verification time 14438 usec
stack depth 80+0
processed 1080 insns (limit 1000000) max_states_per_insn 2 total_states 79 peak_states 79 mark_read 15
";
        assert_eq!(
            verifier_reason(log),
            "R0 invalid mem access 'scalar' (at 587: (79) r1 = *(u64 *)(r0 +0))"
        );
        assert_eq!(
            verifier_reason("0: (85) call bpf_foo#999\ninvalid func unknown#999\n"),
            "invalid func unknown#999 (at 0: (85) call bpf_foo#999)"
        );
        assert_eq!(verifier_reason("unknown opcode 8d\n"), "unknown opcode 8d");
        assert_eq!(verifier_reason(""), "no reason in its log");
    }
}
