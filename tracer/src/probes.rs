//! Loads the kernel programs, sizes their maps, attaches them, and owns the links: dropping
//! [`Probes`] (or the process ending, however it ends) detaches everything, since nothing is
//! pinned. Loading and attaching are separate steps so that the maps can be filled (targets,
//! the state of existing threads) before the first hook runs.
use anyhow::{Context, Result, anyhow};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData},
    programs::{ProgramError, RawTracePoint},
};
use tracer_common::{
    KernelOffsets, MAX_TARGETS, SYSCALL_SLOTS, SyscallTiming, globals, maps,
    memory::{MemConfig, class},
};

use crate::cli::Section;

#[cfg(tracer_missing_ebpf)]
compile_error!("the eBPF object is not built: run `cargo xtask build` (it builds it first)");

/// The kernel programs, built by `cargo xtask build-ebpf` and embedded at compile time.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer.bpf.o"));

/// Which programs to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Programs {
    /// The real ones.
    Tracer,
    /// Empty programs on the same hooks (benchmark floor).
    Floor,
}

/// (program, raw tracepoint, empty program on the same hook for the floor) per section.
fn hooks(section: Section) -> &'static [(&'static str, &'static str, &'static str)] {
    match section {
        // task_new keeps the syscall hooks' cache of untraced threads sound (see
        // `filter::known_untraced` on the kernel side); it comes first so that it is
        // attached before them. sys_switch times syscalls that block (see
        // `SyscallTiming`); the sched section's own sched_switch does that when it is
        // selected.
        Section::Syscalls => &[
            ("task_new", "task_newtask", "floor_newtask"),
            ("sys_enter", "sys_enter", "floor_enter"),
            ("sys_exit", "sys_exit", "floor_exit"),
            ("sys_switch", "sched_switch", "floor_switch"),
        ],
        Section::Sched => &[
            ("sched_switch", "sched_switch", "floor_switch"),
            ("sched_wakeup", "sched_wakeup", "floor_wakeup"),
            ("sched_wake_new", "sched_wakeup_new", "floor_wake_new"),
            ("task_rename", "task_rename", "floor_rename"),
        ],
        Section::Life => &[
            ("proc_fork", "sched_process_fork", "floor_fork"),
            ("proc_exec", "sched_process_exec", "floor_exec"),
            ("proc_exit", "sched_process_exit", "floor_pexit"),
            ("signal_generate", "signal_generate", "floor_signal"),
        ],
        // The syscall programs fold memory and descriptor syscalls in (with
        // MEMORY.enabled = 1), so they are shared with the syscalls section.
        Section::Memory => &[
            ("task_new", "task_newtask", "floor_newtask"),
            ("sys_enter", "sys_enter", "floor_enter"),
            ("sys_exit", "sys_exit", "floor_exit"),
            ("sys_switch", "sched_switch", "floor_switch"),
            ("rss_stat", "rss_stat", "floor_rss_stat"),
            ("mark_victim", "mark_victim", "floor_oom"),
        ],
    }
}

pub struct Probes {
    ebpf: Ebpf,
    targets: Array<MapData, u32>,
    /// Loaded programs and their tracepoints, attached by [`Probes::attach`].
    loaded: Vec<(&'static str, &'static str)>,
}

/// Largest process id + 1 that the kernel hands out now; per-thread state is sized to it.
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
    pub timing: SyscallTiming,
}

impl Probes {
    /// Loads the programs of the chosen sections into the kernel (the verifier runs here),
    /// without attaching them.
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        let pid_max = pid_max()?;
        let follow = u32::from(opts.follow);
        let slots = opts.slots.clamp(1, MAX_TARGETS);
        let memory = MemConfig {
            enabled: u32::from(opts.sections.contains(&Section::Memory)),
            nr_dup2: sysno("dup2")?,
            nr_dup3: sysno("dup3")?,
            nr_close_range: sysno("close_range")?,
            nr_execve: sysno("execve")?,
            nr_execveat: sysno("execveat")?,
        };
        // No BTF for aya: the object has no CO-RE relocations, and parsing vmlinux's BTF
        // would double tracer's memory. The offsets it needs come in through OFFSETS.
        let mut ebpf = EbpfLoader::new()
            .btf(None)
            .override_global(globals::OFFSETS, &opts.offsets, true)
            .override_global(globals::FOLLOW, &follow, true)
            .override_global(globals::MEMORY, &memory, true)
            .override_global(globals::TIMING, &opts.timing, true)
            .map_max_entries(maps::TARGETS, pid_max)
            .map_max_entries(maps::THREADS, pid_max)
            .map_max_entries(maps::THREAD_SCHED, pid_max)
            .map_max_entries(maps::SYSCALL_STATS, slots * SYSCALL_SLOTS)
            .map_max_entries(maps::SCHED_STATS, slots)
            .load(EBPF_OBJECT)
            .map_err(|e| anyhow!("cannot load tracer's kernel programs: {}", one_line(&e)))?;
        if memory.enabled != 0 {
            fill_mem_class(&mut ebpf)?;
        }
        let mut loaded: Vec<(&'static str, &'static str)> = Vec::new();
        for &section in opts.sections {
            for &(prog, tp, floor) in hooks(section) {
                let prog = if opts.programs == Programs::Floor {
                    floor
                } else {
                    prog
                };
                // The memory section shares sys_enter/sys_exit with the syscalls section.
                if loaded.iter().any(|&(p, _)| p == prog) {
                    continue;
                }
                // Not needed when every call is timed from entry, or when the sched
                // section's sched_switch does it.
                if prog == "sys_switch"
                    && (opts.timing.every == 1 || opts.sections.contains(&Section::Sched))
                {
                    continue;
                }
                load_raw_tp(&mut ebpf, prog)?;
                loaded.push((prog, tp));
            }
        }
        let targets = Array::try_from(
            ebpf.take_map(maps::TARGETS)
                .ok_or_else(|| anyhow!("map {} missing", maps::TARGETS))?,
        )?;
        Ok(Self {
            ebpf,
            targets,
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
        self.targets
            .set(tgid, slot + 1, 0)
            .with_context(|| format!("cannot add PID {tgid} to the kernel filter"))
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }
}

/// What each memory or descriptor syscall does, by name (x86_64 numbers from the
/// `syscalls` crate): the kernel side's [`tracer_common::maps::MEM_CLASS`] table.
/// Descriptors received over sockets (SCM_RIGHTS) or returned by ioctls are not seen;
/// /proc's count (`proc_now`) shows any drift.
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
    ("execve", class::FD_CLOSE_MANY),
    ("execveat", class::FD_CLOSE_MANY),
];

fn fill_mem_class(ebpf: &mut Ebpf) -> Result<()> {
    let mut table: Array<&mut MapData, u32> = Array::try_from(
        ebpf.map_mut(maps::MEM_CLASS)
            .ok_or_else(|| anyhow!("map {} missing", maps::MEM_CLASS))?,
    )?;
    for &(name, c) in MEM_SYSCALLS {
        table.set(sysno(name)?, c, 0)?;
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

fn load_raw_tp(ebpf: &mut Ebpf, prog: &str) -> Result<()> {
    let p: &mut RawTracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| anyhow!("program {prog} missing from the eBPF object"))?
        .try_into()?;
    p.load().map_err(|e| {
        if let ProgramError::LoadError { verifier_log, .. } = &e
            && std::env::var_os("TRACER_DEBUG").is_some()
        {
            eprintln!("{verifier_log}");
        }
        anyhow!("the kernel rejected program {prog}: {}", one_line(&e))
    })
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
