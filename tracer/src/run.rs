//! One run: check, resolve targets, attach, then report every interval until the run ends,
//! and print the final summary. Everything that needs root is here or below; the numbers
//! are computed in `model`.
use std::{
    fs::File,
    io::{BufWriter, Write},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    task::JoinSet,
    time::sleep_until,
};
use tracer_common::maps;

use crate::{
    cli::{Cli, Format, Mode, Section},
    collect::{self, Collector, events::EventReader, memory::MemoryCollector},
    model::{CommandExit, ProcessInfo, Report, ReportKind, Sample, events::RawEvent},
    probes::{Probes, Programs},
    render,
    target::{self, Launched},
};

/// The first live report comes this soon, whatever the interval.
const FIRST_REPORT: Duration = Duration::from_millis(500);
/// How often the memory section reads /proc (RSS split, faults, limits, cgroup) for its
/// fits; every `MEMORY_FULL_EVERY`th reading also counts the descriptors.
const MEMORY_TICK: Duration = Duration::from_millis(250);
const MEMORY_FULL_EVERY: u64 = 4;

pub fn run(cli: Cli, mode: Mode) -> Result<ExitCode> {
    target::check_privileges()?;
    let mut out: Box<dyn Write> = match &cli.output_file {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let programs = if cli.bench_floor {
        Programs::Floor
    } else {
        Programs::Tracer
    };

    // Resolve what to trace before attaching anything, so bad input costs nothing.
    let (targets, launched): (Vec<ProcessInfo>, Option<Launched>) = match &mode {
        Mode::Attach(pids) => (
            pids.iter()
                .map(|&p| target::resolve_pid(p))
                .collect::<Result<_>>()?,
            None,
        ),
        Mode::Launch(_) => (Vec::new(), None),
    };
    let pidfds = targets
        .iter()
        .map(|t| target::pidfd_open(t.pid))
        .collect::<Result<Vec<_>>>()?;

    let slots = targets.len().max(1) as u32;
    let offsets = crate::btf::kernel_offsets()?;
    let mut probes = Probes::attach(programs, &cli.sections, slots, &offsets)?;
    let mut memory = match programs {
        Programs::Tracer if cli.sections.contains(&Section::Memory) => {
            Some(MemoryCollector::new(probes.ebpf_mut(), offsets.page_size)?)
        }
        _ => None,
    };
    let (targets, pidfds, launched) = match mode {
        Mode::Attach(_) => {
            for (slot, t) in targets.iter().enumerate() {
                if let Some(m) = memory.as_mut() {
                    m.baseline(t.pid, false);
                }
                probes.add_target(t.pid, slot as u32)?;
            }
            (targets, pidfds, launched)
        }
        Mode::Launch(argv) => {
            let l = target::launch(&argv)?;
            let pidfd = target::pidfd_open(l.info.pid)?;
            let info = l.info.clone();
            l.wait_until_parked()?;
            if let Some(m) = memory.as_mut() {
                m.baseline(info.pid, true);
            }
            probes.add_target(info.pid, 0)?;
            l.release()?;
            (vec![info], vec![pidfd], None)
        }
    };
    debug_assert!(launched.is_none());
    let started = Instant::now();
    if let Some(m) = memory.as_mut() {
        m.start_clock(started);
    }
    let t0_ns = monotonic_ns();
    let (collector, events) = match programs {
        Programs::Tracer => (
            Some(Collector::new(probes.ebpf_mut(), slots)?),
            Some(EventReader {
                ring: collect::take(probes.ebpf_mut(), maps::EVENTS)?,
                undecodable: 0,
            }),
        ),
        Programs::Floor => (None, None),
    };
    let launched_pid = (!cli.command.is_empty()).then(|| targets[0].pid);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let ctx = Loop {
        cli: &cli,
        targets: &targets,
        collector: collector.as_ref(),
        started,
        t0_ns,
    };
    let command = rt.block_on(ctx.run(&mut *out, pidfds, events, launched_pid, memory))?;
    drop(probes); // detach before the process exits (it would happen anyway)
    Ok(command.map_or(ExitCode::SUCCESS, |c| ExitCode::from(c.status())))
}

struct Loop<'a> {
    cli: &'a Cli,
    targets: &'a [ProcessInfo],
    collector: Option<&'a Collector>,
    started: Instant,
    t0_ns: u64,
}

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns`, so event times line up.
pub fn monotonic_ns() -> u64 {
    // CLOCK_MONOTONIC always exists on Linux; clock_gettime cannot fail for it.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}

impl Loop<'_> {
    async fn run(
        &self,
        out: &mut dyn Write,
        pidfds: Vec<std::os::fd::OwnedFd>,
        mut reader: Option<EventReader>,
        launched_pid: Option<u32>,
        mut memory: Option<MemoryCollector>,
    ) -> Result<Option<CommandExit>> {
        // Events of the whole run, and the index where the current interval's begin.
        let mut events: Vec<RawEvent> = Vec::new();
        let mut interval_start = 0;
        let mut exits = JoinSet::new();
        for fd in pidfds {
            // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and the same
            // for the AsyncFd's whole life.
            let fd = unsafe { AsyncFd::register(fd) }
                .map_err(|e| anyhow::anyhow!("cannot watch the traced process: {e}"))?;
            exits.spawn(async move {
                let _ = fd.readable().await;
            });
        }
        let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut sighup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
        // Said only now that a signal ends the run cleanly (tests wait for this line).
        let names: Vec<String> = self
            .targets
            .iter()
            .map(|t| format!("{} ({})", t.pid, t.comm))
            .collect();
        eprintln!("tracer: tracing {}; Ctrl-C to stop", names.join(", "));

        let live = self.collector.is_some()
            && (self.cli.output == Format::Text || self.cli.interval.is_some());
        let interval = self.cli.interval.unwrap_or(Duration::from_secs(1));
        let mut next = self.started + interval.min(FIRST_REPORT);
        let deadline = self.cli.duration.map(|d| self.started + d);
        let mut prev = Sample::default();
        let mut prev_at = self.started;
        let mut command = None;
        let mut mem_next = self.started + MEMORY_TICK;
        let mut mem_ticks = 0u64;
        loop {
            tokio::select! {
                _ = sleep_until(mem_next.into()), if memory.is_some() => {
                    if let Some(m) = memory.as_mut() {
                        mem_ticks += 1;
                        m.tick(mem_ticks.is_multiple_of(MEMORY_FULL_EVERY));
                    }
                    mem_next += MEMORY_TICK;
                    if mem_next < Instant::now() {
                        mem_next = Instant::now() + MEMORY_TICK;
                    }
                }
                _ = sleep_until(next.into()), if live => {
                    let now = Instant::now();
                    let cur = self.sample()?;
                    if let Some(r) = reader.as_mut() {
                        r.drain(&mut events);
                    }
                    let mut r = Report::build(
                        ReportKind::Interval,
                        &cur.since(&prev),
                        &events[interval_start..],
                        self.targets,
                        (now - prev_at).as_secs_f64(),
                        self.t0_ns,
                        None,
                    );
                    if let Some(m) = memory.as_mut() {
                        m.tick(true); // "now" is now, not the last tick
                        m.fill(&mut r, &cur, &events[interval_start..], self.t0_ns);
                    }
                    interval_start = events.len();
                    render::write(out, self.cli.output, &r).context("cannot write the report")?;
                    (prev, prev_at) = (cur, now);
                    next += interval;
                    if next < now {
                        next = now + interval;
                    }
                }
                _ = sleep_until(deadline.unwrap_or(self.started).into()), if deadline.is_some() => break,
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
                _ = sighup.recv() => break,
                _ = exits.join_next(), if !exits.is_empty() => {
                    if exits.is_empty() {
                        break;
                    }
                }
            }
        }
        let secs = self.started.elapsed().as_secs_f64();
        // Before reaping: a launched command's zombie still shows its final fault counts.
        if let Some(m) = memory.as_mut() {
            m.tick(true);
        }
        if let Some(pid) = launched_pid {
            command = target::try_reap(pid);
        }
        match self.collector {
            Some(_) => {
                let sample = self.sample()?;
                if let Some(r) = reader.as_mut() {
                    r.drain(&mut events);
                }
                let mut r = Report::build(
                    ReportKind::Final,
                    &sample,
                    &events,
                    self.targets,
                    secs,
                    self.t0_ns,
                    command,
                );
                if let Some(m) = memory.as_mut() {
                    m.fill(&mut r, &sample, &events, self.t0_ns);
                }
                render::write(out, self.cli.output, &r).context("cannot write the report")?;
            }
            None => eprintln!("tracer: floor programs attached for {secs:.3} s"),
        }
        Ok(command)
    }

    fn sample(&self) -> Result<Sample> {
        self.collector.map_or(Ok(Sample::default()), |c| {
            c.sample().context("cannot read the kernel maps")
        })
    }
}
