//! One run: check, resolve targets, load, fill the maps, attach, then report every interval
//! until the run ends, and print the final summary. Everything that needs root is here or
//! below; the numbers are computed in `model`.
use std::{
    process::ExitCode,
    time::{Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail};
use tracer_common::maps;

use crate::{
    cli::{Cli, Mode, Section},
    collect::{
        self, Collector,
        events::EventReader,
        memory::MemoryCollector,
        proc::{self, Live},
        procs::ProcBook,
        stream::StreamReader,
    },
    engine::Engine,
    model::{Context, ProcessInfo, events::EventLog, procs::Joined},
    probes::{LoadOptions, Probes, Programs},
    select::{self, Selector},
    target::{self, Launched},
};

/// Nanoseconds per clock tick, the unit of /proc's start times.
pub fn ns_per_clock_tick() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1_000_000_000 / hz.max(1) as u64
}

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns`, so event times line up.
pub fn monotonic_ns() -> u64 {
    // CLOCK_MONOTONIC always exists on Linux; clock_gettime cannot fail for it.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}

/// The wall clock minus CLOCK_MONOTONIC, in ns: the wall clock read between two monotonic
/// readings, against their midpoint. Read once, so that the run's wall-clock times keep
/// the monotonic clock's intervals (a wall clock stepped during the run does not move them).
fn wall_offset_ns() -> i128 {
    let before = monotonic_ns();
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let after = monotonic_ns();
    wall - (before as i128 + after as i128) / 2
}

pub fn run(mut cli: Cli, mode: Mode) -> Result<ExitCode> {
    let begun = Instant::now();
    target::check_privileges()?;
    let mut sinks = crate::sink::open_all(&cli)?;
    let programs = if cli.bench_floor {
        Programs::Floor
    } else {
        Programs::Tracer
    };

    // Resolve what to trace before loading anything, so bad input costs nothing.
    let mut targets: Vec<ProcessInfo> = match &mode {
        Mode::Attach(pids) => pids
            .iter()
            .map(|&p| target::resolve_pid(p))
            .collect::<Result<_>>()?,
        Mode::Launch(_) => Vec::new(),
    };
    let mut pidfds = targets
        .iter()
        .map(|t| target::pidfd_open(t.pid))
        .collect::<Result<Vec<_>>>()?;

    let selectors = Selector::all(&cli.comms, &cli.cgroups, &cli.exes)?;
    // Slots: the --pid targets, the launched command, then one per selector.
    let first_selector_slot = (targets.len() + usize::from(matches!(mode, Mode::Launch(_)))) as u32;
    let slots = (first_selector_slot as usize + selectors.len()).max(1) as u32;
    let kernel = crate::btf::KernelBtf::open()?;
    let support = kernel.support(&cli.sections, crate::probes::tracepoints)?;
    if !selectors.is_empty() {
        for (tp, reads) in crate::probes::select_tracepoints() {
            if kernel.tracepoint_args(tp).is_none_or(|a| a.len() < reads) {
                bail!(
                    "--comm, --cgroup and --exe need the tracepoint {tp}, which this kernel lacks"
                );
            }
        }
    }
    drop(kernel);
    for (section, why) in &support.missing {
        eprintln!("tracer: no {section} section on this kernel ({why})");
    }
    cli.sections
        .retain(|s| !support.missing.iter().any(|(m, _)| m == s));
    if cli.sections.is_empty() {
        bail!("this kernel lacks what every section asked for needs");
    }
    let offsets = support.offsets;
    let stream = match cli.trace_spec() {
        Some(spec) => Some((
            crate::model::strace::config(&spec).map_err(anyhow::Error::msg)?,
            cli.trace_buffer
                .unwrap_or(tracer_common::stream::RING_BYTES_DEFAULT),
        )),
        None => None,
    };
    let mut probes = Probes::load(&LoadOptions {
        programs,
        sections: &cli.sections,
        slots,
        offsets,
        follow: cli.follow,
        per_thread: cli.threads,
        timing: cli.timing(),
        stall_ns: cli.stall.as_nanos() as u64,
        select: (!selectors.is_empty()).then(|| select::config(&selectors, first_selector_slot)),
        stream,
    })?;
    let exe_watch = select::ExeWatch::new(
        collect::take(probes.ebpf_mut(), maps::EXES)?,
        select::exe_entries(&selectors, first_selector_slot),
    )?;
    let real = programs == Programs::Tracer;
    let sched = real && cli.sections.contains(&Section::Sched);
    let loops = real && crate::probes::follows_loops(&cli.sections);
    let thread_calls = loops && sched && cli.threads;
    let mut collector = if real {
        let programs = probes.fdinfo_paths()?;
        let entries = probes.table_entries();
        Some(Collector::new(
            probes.ebpf_mut(),
            slots,
            entries,
            sched,
            loops,
            thread_calls,
            programs,
        )?)
    } else {
        None
    };
    let reader = if real {
        Some(EventReader {
            ring: collect::take(probes.ebpf_mut(), maps::EVENTS)?,
            undecodable: 0,
        })
    } else {
        None
    };

    let stream = if real && stream.is_some() {
        Some(
            StreamReader::new(probes.ebpf_mut())?
                .decode_fds(cli.decode_fds)
                .stacks(cli.stack),
        )
    } else {
        None
    };

    let mut memory = if real && cli.sections.contains(&Section::Memory) {
        Some(MemoryCollector::new(probes.ebpf_mut(), offsets.page_size)?)
    } else {
        None
    };

    let launched: Option<Launched> = match mode {
        Mode::Attach(_) => None,
        Mode::Launch(argv) => {
            let l = target::launch(&argv, cli.tui)?;
            pidfds.push(target::pidfd_open(l.info.pid)?);
            l.wait_until_parked()?;
            targets.push(l.info.clone());
            Some(l)
        }
    };
    // Each target with its pidfd, opened when it was named: the process itself, whoever is
    // given its pid later.
    let mut live: Vec<Live> = targets
        .iter()
        .zip(pidfds)
        .enumerate()
        .map(|(slot, (t, fd))| {
            let how = if launched.is_some() && slot == targets.len() - 1 {
                Joined::Launched
            } else {
                Joined::Attached
            };
            Live::new(t.pid, slot as u32, fd, how)
        })
        .collect();
    for who in &live {
        if let Some(m) = memory.as_mut() {
            // Before the kernel starts counting: what the process already has.
            m.baseline(who, launched.is_some());
        }
        probes.add_target(who.pid, who.slot)?;
    }
    // The processes each selector matches now (the kernel side takes in later ones). Their
    // memory is not read from /proc: a selector's entry counts several processes.
    for (i, sel) in selectors.iter().enumerate() {
        let slot = first_selector_slot + i as u32;
        targets.push(sel.info());
        for pid in sel.matching() {
            if live.iter().any(|l| l.pid == pid) {
                continue;
            }
            let Ok(fd) = target::pidfd_open(pid) else {
                continue;
            };
            let who = Live::new(pid, slot, fd, Joined::Matched);
            probes.add_target_with(pid, slot, sel.flag())?;
            live.push(who);
        }
    }
    // The run's window opens here, on both clocks: threads are seeded as of now, and every
    // hook attaches after (attaching takes milliseconds, more on a slow machine; a window
    // opened after it would be shorter than the threads' accounted time).
    let t0_ns = monotonic_ns();
    let started = Instant::now();
    let wall_offset_ns = wall_offset_ns();
    if let Some(c) = collector.as_mut() {
        for who in &live {
            c.seed(who, t0_ns)?;
        }
    }
    // With --follow, the descendants the targets already have join too, under their
    // target's slot: found before attaching, and again after (a child forked in between is
    // in /proc by then; later ones the fork hook takes in).
    if cli.follow && real {
        follow_descendants(&mut probes, &mut live, collector.as_mut(), t0_ns)?;
    }
    probes.attach()?;
    if cli.follow && real {
        follow_descendants(&mut probes, &mut live, collector.as_mut(), monotonic_ns())?;
    }
    if let Some(m) = memory.as_mut() {
        m.start_clock(started);
    }
    let launched_pid = launched.as_ref().map(|l| l.info.pid);
    if let Some(mut l) = launched {
        // To the sink that shows it (the live view); none taking it closes the pipe.
        let mut output = l.take_output();
        for s in sinks.iter_mut() {
            output = output.and_then(|o| s.command_output(&l.info, o, t0_ns));
        }
        l.release()?;
    }

    let procs = if real {
        let mut book = ProcBook::new(
            probes.proc_calls_map()?,
            probes.table_entries(),
            ns_per_clock_tick(),
            cli.sections.contains(&Section::Memory),
            cli.processes,
            first_selector_slot,
        )?;
        live.iter().for_each(|who| book.join(who));
        Some(book)
    } else {
        None
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let mut engine = Engine {
        cli: &cli,
        ctx: Context {
            targets: &targets,
            t0_ns,
            wall_offset_ns,
            threads: cli.threads,
            timing: cli.timing(),
            list_processes: cli.processes,
            stall_ns: cli.stall.as_nanos() as u64,
        },
        collector,
        memory,
        procs,
        begun,
        started,
        live,
        window: EventLog::default(),
        run_log: EventLog::default(),
        undecodable: 0,
        sinks,
        exe_watch,
        detector: Default::default(),
    };
    let command = rt.block_on(engine.run(reader, stream, launched_pid))?;
    drop(probes); // detach before the process exits (it would happen anyway)
    Ok(command.map_or(ExitCode::SUCCESS, |c| ExitCode::from(c.status())))
}

/// Adds the descendants of the targets not yet traced to the filter, each under its
/// target's slot, and to `live`. A descendant is taken as found only if its pidfd, opened
/// after, names a process whose parent is the target or one of its descendants (not a later
/// process given its pid).
fn follow_descendants(
    probes: &mut Probes,
    live: &mut Vec<Live>,
    mut collector: Option<&mut Collector>,
    now_ns: u64,
) -> Result<()> {
    let roots: Vec<(u32, u32)> = live.iter().map(|l| (l.pid, l.slot)).collect();
    for (root, slot) in roots {
        let mut family = vec![root];
        for pid in proc::descendants(root) {
            let Ok(fd) = target::pidfd_open(pid) else {
                continue;
            };
            let child = Live::new(pid, slot, fd, Joined::Followed);
            let parent_ok = proc::start_and_parent(pid).is_some_and(|(_, p)| family.contains(&p));
            if !parent_ok || !child.is_running() {
                continue;
            }
            family.push(pid);
            if live.iter().any(|l| l.pid == pid) {
                continue;
            }
            if let Some(c) = collector.as_deref_mut() {
                c.seed(&child, now_ns)?;
            }
            probes.add_target(pid, slot)?;
            live.push(child);
        }
    }
    Ok(())
}
