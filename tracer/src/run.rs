//! One run: check, resolve targets, load, fill the maps, attach, then report every interval
//! until the run ends, and print the final summary. Everything that needs root is here or
//! below; the numbers are computed in `model`.
use std::{
    io::{BufWriter, Write},
    os::fd::{AsRawFd, OwnedFd, RawFd},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    task::JoinSet,
    time::sleep_until,
};
use tracer_common::{
    event::{EventData, RawEvent},
    maps,
};

use crate::{
    cli::{Cli, Format, Mode, Section},
    collect::{
        self, Collector,
        events::EventReader,
        memory::MemoryCollector,
        proc::{self, Live},
    },
    model::{CommandExit, Context, ProcessInfo, Report, ReportKind, Sample},
    probes::{LoadOptions, Probes, Programs},
    render,
    target::{self, Launched},
};

/// The first live report comes this soon after tracer starts, whatever the interval
/// (loading and verifying the programs takes about a tenth of a second of it)...
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

/// Seconds from `from_ns` to `to_ns` (monotonic).
fn secs_between(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 / 1e9
}

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns`, so event times line up.
pub fn monotonic_ns() -> u64 {
    // CLOCK_MONOTONIC always exists on Linux; clock_gettime cannot fail for it.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
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

    let slots = targets.len().max(1) as u32;
    let kernel = crate::btf::KernelBtf::open()?;
    let support = kernel.support(&cli.sections, crate::probes::tracepoints)?;
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
    let live: Vec<Live> = targets
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
    // The run's window opens here, on both clocks: threads are seeded as of now, and every
    // hook attaches after (attaching takes milliseconds, more on a slow machine; a window
    // opened after it would be shorter than the threads' accounted time).
    let t0_ns = monotonic_ns();
    let started = Instant::now();
    if let Some(c) = collector.as_mut() {
        for who in &live {
            c.seed(who, t0_ns)?;
        }
    }
    probes.attach()?;
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
            threads: cli.threads,
            timing: cli.timing(),
        },
        collector,
        memory,
        begun,
        started,
        live,
        events: Vec::new(),
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

struct Loop<'a> {
    cli: &'a Cli,
    ctx: Context<'a>,
    collector: Option<Collector>,
    memory: Option<MemoryCollector>,
    /// When tracer started, and when its window opened (just before attaching).
    begun: Instant,
    started: Instant,
    /// Traced processes, including children followed since the start.
    live: Vec<Live>,
    /// Events of the whole run.
    events: Vec<RawEvent>,
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
            .map(|t| format!("{} ({})", t.pid, render::term::printable(&t.comm)))
            .collect();
        eprintln!("tracer: tracing {}; Ctrl-C to stop", names.join(", "));

        let live_reports = self.collector.is_some()
            && (self.cli.output == Format::Text || self.cli.interval.is_some());
        let interval = self.cli.interval.unwrap_or(Duration::from_secs(1));
        let first = (self.begun + FIRST_REPORT).max(self.started + FIRST_REPORT_MIN);
        let mut next = first.min(self.started + interval);
        let deadline = self.cli.duration.map(|d| self.started + d);
        let mut prev = Sample::default();
        // Monotonic time of the previous reading: a report's window ends at its reading.
        let mut prev_ns = self.ctx.t0_ns;
        let mut interval_start = 0;
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
                    let now = Instant::now();
                    self.drain(ring.as_mut(), &mut exits)?;
                    let mut r = Report::build(
                        ReportKind::Interval,
                        &cur.since(&prev),
                        &self.events[interval_start..],
                        &self.ctx,
                        secs_between(prev_ns, at_ns),
                        None,
                    );
                    if let Some(m) = self.memory.as_mut() {
                        m.tick(true); // "now" is now, not the last tick
                        m.fill(&mut r, &cur, &self.events[interval_start..], self.ctx.t0_ns);
                    }
                    render::write(out, self.cli.output, &r).context("cannot write the report")?;
                    (prev, prev_ns, interval_start) = (cur, at_ns, self.events.len());
                    next += interval;
                    if next < now {
                        next = now + interval;
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
                    if exits.is_empty() {
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
            let (sample, at_ns) = self.sample()?;
            let secs = secs_between(self.ctx.t0_ns, at_ns);
            self.drain(ring.as_mut(), &mut exits)?;
            let mut r = Report::build(
                ReportKind::Final,
                &sample,
                &self.events,
                &self.ctx,
                secs,
                command,
            );
            if let Some(m) = self.memory.as_mut() {
                m.fill(&mut r, &sample, &self.events, self.ctx.t0_ns);
            }
            render::write(out, self.cli.output, &r).context("cannot write the report")?;
        } else {
            let secs = self.started.elapsed().as_secs_f64();
            eprintln!("tracer: floor programs attached for {secs:.3} s");
        }
        Ok(command)
    }

    /// Takes new events; children that `--follow` added are watched for their exit too.
    fn drain(&mut self, ring: Option<&mut AsyncFd<Ring>>, exits: &mut JoinSet<()>) -> Result<()> {
        let Some(ring) = ring else { return Ok(()) };
        let from = self.events.len();
        ring.get_mut().0.drain(&mut self.events);
        self.undecodable = ring.get_ref().0.undecodable;
        for e in &self.events[from..] {
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
