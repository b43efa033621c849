//! One run: check, resolve targets, load, fill the maps, attach, then report every interval
//! until the run ends, and print the final summary. Everything that needs root is here or
//! below; the numbers are computed in `model`.
use std::{
    io::{BufWriter, Write},
    os::fd::{AsRawFd, OwnedFd, RawFd},
    process::ExitCode,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, anyhow, bail};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    task::JoinSet,
    time::sleep_until,
};
use tracer_common::{event::EventData, maps};

use crate::{
    cli::{Cli, Format, Mode, Section},
    collect::{
        self, Collector,
        events::EventReader,
        memory::MemoryCollector,
        proc::{self, Live},
    },
    model::{
        CommandExit, Context, ProcessInfo, Report, ReportKind, Sample, Window, events::EventLog,
        memory::MemSample,
    },
    probes::{LoadOptions, Probes, Programs},
    render,
    select::{self, Selector},
    target::{self, Launched},
};

/// The first text report comes this soon after tracer starts, whatever the interval, so
/// that a person sees something within half a second (issue 5's target; loading and
/// verifying the programs takes about a tenth of a second of it)... JSON interval objects
/// tile the run instead, each `--interval` long from the start.
const FIRST_REPORT: Duration = Duration::from_millis(450);
/// ...but never sooner than this after attaching, so that it covers something.
const FIRST_REPORT_MIN: Duration = Duration::from_millis(50);

/// How often the memory section reads /proc (RSS split, faults, limits, cgroup) for its
/// fits; every `MEMORY_FULL_EVERY`th reading also counts the descriptors.
const MEMORY_TICK: Duration = Duration::from_millis(250);
const MEMORY_FULL_EVERY: u64 = 4;

/// Nanoseconds per clock tick, the unit of /proc's start times.
fn ns_per_clock_tick() -> u64 {
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
    let mut out: Box<dyn Write> = match &cli.output_file {
        Some(path) => Box::new(BufWriter::new(crate::output::open(path)?)),
        None => Box::new(std::io::stdout().lock()),
    };
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

    let selectors = Selector::all(&cli.comms, &cli.cgroups)?;
    // Slots: the --pid targets, the launched command, then one per selector.
    let first_selector_slot = (targets.len() + usize::from(matches!(mode, Mode::Launch(_)))) as u32;
    let slots = (first_selector_slot as usize + selectors.len()).max(1) as u32;
    let kernel = crate::btf::KernelBtf::open()?;
    let support = kernel.support(&cli.sections, crate::probes::tracepoints)?;
    if !selectors.is_empty() {
        for (tp, reads) in crate::probes::select_tracepoints() {
            if kernel.tracepoint_args(tp).is_none_or(|a| a.len() < reads) {
                bail!("--comm and --cgroup need the tracepoint {tp}, which this kernel lacks");
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
    let mut probes = Probes::load(&LoadOptions {
        programs,
        sections: &cli.sections,
        slots,
        offsets,
        follow: cli.follow,
        per_thread: cli.threads,
        timing: cli.timing(),
        select: (!selectors.is_empty()).then(|| select::config(&selectors, first_selector_slot)),
    })?;
    let real = programs == Programs::Tracer;
    let sched = real && cli.sections.contains(&Section::Sched);
    let mut collector = if real {
        let programs = probes.fdinfo_paths()?;
        let entries = probes.table_entries();
        Some(Collector::new(
            probes.ebpf_mut(),
            slots,
            entries,
            sched,
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

    let mut memory = if real && cli.sections.contains(&Section::Memory) {
        Some(MemoryCollector::new(probes.ebpf_mut(), offsets.page_size)?)
    } else {
        None
    };

    let launched: Option<Launched> = match mode {
        Mode::Attach(_) => None,
        Mode::Launch(argv) => {
            let l = target::launch(&argv)?;
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
        .map(|(slot, (t, fd))| Live::new(t.pid, slot as u32, fd))
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
            let who = Live::new(pid, slot, fd);
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
    if let Some(l) = launched {
        l.release()?;
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let mut run = Loop {
        cli: &cli,
        ctx: Context {
            targets: &targets,
            t0_ns,
            wall_offset_ns,
            threads: cli.threads,
            timing: cli.timing(),
        },
        collector,
        memory,
        begun,
        started,
        live,
        window: EventLog::default(),
        run_log: EventLog::default(),
        undecodable: 0,
    };
    let command = rt.block_on(run.run(&mut *out, reader, launched_pid))?;
    drop(probes); // detach before the process exits (it would happen anyway)
    Ok(command.map_or(ExitCode::SUCCESS, |c| ExitCode::from(c.status())))
}

/// The ring buffer's reader, pollable for readiness.
struct Ring(EventReader);

impl AsRawFd for Ring {
    fn as_raw_fd(&self) -> RawFd {
        self.0.ring.as_raw_fd()
    }
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
            let child = Live::new(pid, slot, fd);
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

struct Loop<'a> {
    cli: &'a Cli,
    ctx: Context<'a>,
    collector: Option<Collector>,
    memory: Option<MemoryCollector>,
    /// When tracer started, and when its window opened (just before attaching).
    begun: Instant,
    started: Instant,
    /// Traced processes still running, including children followed since the start.
    live: Vec<Live>,
    /// Events of the current interval, and of the whole run (both bounded).
    window: EventLog,
    run_log: EventLog,
    /// Ring-buffer records that could not be decoded, so far.
    undecodable: u64,
}

fn watch(exits: &mut JoinSet<()>, fd: OwnedFd) -> Result<()> {
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and the same for
    // the AsyncFd's whole life.
    let fd = unsafe { AsyncFd::register(fd) }
        .map_err(|e| anyhow!("cannot watch the traced process: {e}"))?;
    exits.spawn(async move {
        let _ = fd.readable().await;
    });
    Ok(())
}

impl Loop<'_> {
    async fn run(
        &mut self,
        out: &mut dyn Write,
        reader: Option<EventReader>,
        launched_pid: Option<u32>,
    ) -> Result<Option<CommandExit>> {
        let mut exits = JoinSet::new();
        for who in &self.live {
            watch(&mut exits, who.watch_fd()?)?;
        }
        let mut ring = match reader {
            // SAFETY: the AsyncFd owns the ring buffer and with it its descriptor.
            Some(r) => Some(
                unsafe { AsyncFd::register(Ring(r)) }
                    .map_err(|e| anyhow!("cannot watch the event ring buffer: {e}"))?,
            ),
            None => None,
        };
        let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut sighup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
        // Said only now that a signal ends the run cleanly (tests wait for this line).
        let names: Vec<String> = self
            .ctx
            .targets
            .iter()
            .map(|t| render::term::printable(&ProcessInfo::name(t.pid, &t.comm)).into_owned())
            .collect();
        eprintln!("tracer: tracing {}; Ctrl-C to stop", names.join(", "));

        let live_reports = self.collector.is_some()
            && (self.cli.output == Format::Text || self.cli.interval.is_some());
        let json_intervals = live_reports && self.cli.output == Format::Json;
        let interval = self.cli.interval.unwrap_or(Duration::from_secs(1));
        // JSON interval objects tile the run from its start, each `interval` long; the text's
        // first report comes soon after tracer starts (FIRST_REPORT), then every interval.
        let mut next = if json_intervals {
            self.started + interval
        } else {
            let first = (self.begun + FIRST_REPORT).max(self.started + FIRST_REPORT_MIN);
            first.min(self.started + interval)
        };
        let deadline = self.cli.duration.map(|d| self.started + d);
        // The previous interval report: its counts, memory reading, end (monotonic: a
        // report's window ends at its reading), and the events it covered.
        let mut prev = Sample::default();
        let mut prev_mem: Option<MemSample> = None;
        let mut prev_ns = self.ctx.t0_ns;
        let mut mem_next = self.started + MEMORY_TICK;
        let mut mem_ticks = 0u64;
        loop {
            tokio::select! {
                _ = sleep_until(mem_next.into()), if self.memory.is_some() => {
                    if let Some(m) = self.memory.as_mut() {
                        mem_ticks += 1;
                        m.tick(mem_ticks.is_multiple_of(MEMORY_FULL_EVERY));
                    }
                    mem_next += MEMORY_TICK;
                    if mem_next < Instant::now() {
                        mem_next = Instant::now() + MEMORY_TICK;
                    }
                }
                _ = sleep_until(next.into()), if live_reports => {
                    let (cur, at_ns) = self.sample()?;
                    self.drain(ring.as_mut(), &mut exits)?;
                    let window = std::mem::take(&mut self.window);
                    let mem = self.memory.as_mut().map(|m| {
                        m.tick(true); // "now" is now, not the last tick
                        m.read(&cur, &window.oom_kills)
                    });
                    let w = Window {
                        kind: ReportKind::Interval,
                        start_ns: prev_ns,
                        end_ns: at_ns,
                        counts: &cur.since(&prev),
                        events: &window,
                        memory: mem.as_ref().map(|m| (m, prev_mem.as_ref())),
                        command: None,
                    };
                    self.write(out, &w)?;
                    (prev, prev_mem, prev_ns) = (cur, mem, at_ns);
                    // A report that comes late skips the boundaries it missed: the next
                    // window is longer, and they stay where they were.
                    next += interval;
                    let now = Instant::now();
                    while next <= now {
                        next += interval;
                    }
                }
                Ok(mut guard) = async { ring.as_mut().unwrap().readable_mut().await }, if ring.is_some() => {
                    guard.clear_ready();
                    drop(guard);
                    self.drain(ring.as_mut(), &mut exits)?;
                }
                _ = sleep_until(deadline.unwrap_or(self.started).into()), if deadline.is_some() => break,
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
                _ = sighup.recv() => break,
                _ = exits.join_next(), if !exits.is_empty() => {
                    // A fork just before the exit may still sit in the ring buffer.
                    self.drain(ring.as_mut(), &mut exits)?;
                    // Selected processes come and go: then only a signal or --duration ends
                    // the run.
                    if exits.is_empty() && !self.cli.selecting() {
                        break;
                    }
                }
            }
        }
        // Before reaping: a launched command's zombie still shows its final fault counts.
        if let Some(m) = self.memory.as_mut() {
            m.tick(true);
        }
        let command = launched_pid.and_then(target::try_reap);
        if self.collector.is_some() {
            // One reading ends both the last interval and the run.
            let (sample, at_ns) = self.sample()?;
            self.drain(ring.as_mut(), &mut exits)?;
            let mem = self
                .memory
                .as_mut()
                .map(|m| m.read(&sample, &self.run_log.oom_kills));
            // The last, partial interval: from the last interval report to the end.
            if json_intervals && at_ns > prev_ns {
                let w = Window {
                    kind: ReportKind::Interval,
                    start_ns: prev_ns,
                    end_ns: at_ns,
                    counts: &sample.since(&prev),
                    events: &self.window,
                    memory: mem.as_ref().map(|m| (m, prev_mem.as_ref())),
                    command: None,
                };
                self.write(out, &w)?;
            }
            let w = Window {
                kind: ReportKind::Final,
                start_ns: self.ctx.t0_ns,
                end_ns: at_ns,
                counts: &sample,
                events: &self.run_log,
                memory: mem.as_ref().map(|m| (m, None)),
                command,
            };
            self.write(out, &w)?;
        } else {
            let secs = self.started.elapsed().as_secs_f64();
            eprintln!("tracer: floor programs attached for {secs:.3} s");
        }
        Ok(command)
    }

    /// Builds the report of a window and writes it.
    fn write(&self, out: &mut dyn Write, w: &Window) -> Result<()> {
        let r = Report::build(w, &self.ctx);
        render::write(out, self.cli.output, &r).context("cannot write the report")
    }

    /// Takes new events; children that `--follow` added are watched for their exit too.
    fn drain(&mut self, ring: Option<&mut AsyncFd<Ring>>, exits: &mut JoinSet<()>) -> Result<()> {
        let Some(ring) = ring else { return Ok(()) };
        let mut fresh = Vec::new();
        ring.get_mut().0.drain(&mut fresh);
        self.undecodable = ring.get_ref().0.undecodable;
        self.window.add(&fresh);
        self.run_log.add(&fresh);
        for e in &fresh {
            // A process a selector took in at its exec: /proc is read for its threads too.
            if let EventData::Exec(_) = e.data
                && self
                    .ctx
                    .targets
                    .get(e.header.slot as usize)
                    .is_some_and(|t| t.selector_label().is_some())
                && !self.live.iter().any(|l| l.pid == e.header.tgid)
                && let Ok(fd) = target::pidfd_open(e.header.tgid)
            {
                let who = Live::new(e.header.tgid, e.header.slot, fd);
                if who.is_running() {
                    self.live.push(who);
                }
            }
            if let EventData::Fork(f) = e.data
                && f.followed != 0
            {
                // It may have ended already, its pid perhaps given to another process
                // since: then there is nothing to wait for, nor to read in /proc. The pidfd
                // is the child's if, opened, it names a process that started when the child
                // did, as a child of the traced process.
                let Ok(fd) = target::pidfd_open(f.child_tgid) else {
                    continue;
                };
                let child = Live::new(f.child_tgid, e.header.slot, fd);
                let started = f.child_start_ns / ns_per_clock_tick();
                if proc::start_and_parent(child.pid) == Some((started, e.header.tgid))
                    && child.is_running()
                {
                    watch(exits, child.watch_fd()?)?;
                    self.live.push(child);
                }
            }
        }
        Ok(())
    }

    /// Reads everything, and says when (monotonic ns): open intervals are counted up to
    /// that moment, and a report's window ends there too.
    fn sample(&mut self) -> Result<(Sample, u64)> {
        // Ended processes are final: nothing of them is read again, and their pidfds close.
        self.live.retain(Live::is_running);
        let now = monotonic_ns();
        let mut sample = match self.collector.as_mut() {
            Some(c) => c
                .sample(&self.live, now)
                .context("cannot read the kernel maps")?,
            None => Sample::default(),
        };
        sample.drops.undecodable_events = self.undecodable;
        Ok((sample, now))
    }
}
