//! The run, once everything is attached: reads the kernel maps and the event ring at each
//! interval, builds the report of each window once (in `model`), hands it to every sink,
//! and ends the run at a signal, `--duration`, when every traced process has exited, or when
//! a sink asks (a live view's `q`).
use std::{
    os::fd::{AsRawFd, OwnedFd, RawFd},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    task::JoinSet,
    time::sleep_until,
};
use tracer_common::event::EventData;

use crate::{
    cli::Cli,
    collect::{
        Collector,
        events::EventReader,
        memory::MemoryCollector,
        proc::{self, Live},
        procs::ProcBook,
        stream::StreamReader,
    },
    model::{
        CommandExit, Context, ProcessInfo, Report, ReportKind, Sample, Window, anomaly::Detector,
        events::EventLog, memory::MemSample, procs::Joined, strace::Item,
    },
    render,
    run::{monotonic_ns, ns_per_clock_tick},
    select::ExeWatch,
    sink::Sink,
    target,
};

/// The first text report comes this soon after tracer starts, whatever the interval, so
/// that a person sees something within half a second (issue 5's target; loading and
/// verifying the programs takes about a tenth of a second of it)... Sinks that want their
/// intervals to tile the run from its start (JSON) get no early report.
const FIRST_REPORT: Duration = Duration::from_millis(450);
/// ...but never sooner than this after attaching, so that it covers something.
const FIRST_REPORT_MIN: Duration = Duration::from_millis(50);

/// How often the memory section reads /proc (RSS split, faults, limits, cgroup) for its
/// fits; every `MEMORY_FULL_EVERY`th reading also counts the descriptors.
const MEMORY_TICK: Duration = Duration::from_millis(250);
const MEMORY_FULL_EVERY: u64 = 4;

/// How often the `--exe` selectors' paths are looked at again (a replaced file).
const EXE_LOOK: Duration = Duration::from_secs(1);

/// The ring buffer's reader, pollable for readiness.
struct Ring(EventReader);

impl AsRawFd for Ring {
    fn as_raw_fd(&self) -> RawFd {
        self.0.ring.as_raw_fd()
    }
}

/// Calls read from the stream's ring before they are written.
const STREAM_BATCH: usize = 4096;

/// The call stream's reader, pollable for readiness.
struct StreamRing(StreamReader);

impl AsRawFd for StreamRing {
    fn as_raw_fd(&self) -> RawFd {
        self.0.ring.as_raw_fd()
    }
}

pub struct Engine<'a> {
    pub cli: &'a Cli,
    pub ctx: Context<'a>,
    pub collector: Option<Collector>,
    pub memory: Option<MemoryCollector>,
    /// Each traced process's own counts.
    pub procs: Option<ProcBook>,
    /// When tracer started, and when its window opened (just before attaching).
    pub begun: Instant,
    pub started: Instant,
    /// Traced processes still running, including children followed since the start.
    pub live: Vec<Live>,
    /// Events of the current interval, and of the whole run (both bounded).
    pub window: EventLog,
    pub run_log: EventLog,
    /// Ring-buffer records that could not be decoded, so far.
    pub undecodable: u64,
    /// Where the reports go.
    pub sinks: Vec<Box<dyn Sink>>,
    /// The `--exe` selectors' files, looked at again every [`EXE_LOOK`].
    pub exe_watch: Option<ExeWatch>,
    /// The run's baselines, against which each interval's figures are judged.
    pub detector: Detector,
}

/// Builds the report of a window, once, judged against the run's baseline, and hands it
/// to every sink `to` chooses that takes it (the final report goes to all).
fn emit(
    ctx: &Context,
    detector: &mut Detector,
    sinks: &mut [Box<dyn Sink>],
    w: &Window,
    to: impl Fn(&dyn Sink) -> bool,
) -> Result<()> {
    let mut r = Report::build(w, ctx);
    r.judge(detector);
    for sink in sinks.iter_mut().filter(|s| to(s.as_ref())) {
        if r.kind == ReportKind::Final || sink.wants_intervals() {
            sink.write(&r)?;
        }
    }
    Ok(())
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

impl Engine<'_> {
    /// Runs until the end, and says how a launched command ended.
    pub async fn run(
        &mut self,
        reader: Option<EventReader>,
        stream: Option<StreamReader>,
        launched_pid: Option<u32>,
    ) -> Result<Option<CommandExit>> {
        let mut stream = match stream {
            // SAFETY: the AsyncFd owns the ring buffer and with it its descriptor.
            Some(r) => Some(
                unsafe { AsyncFd::register(StreamRing(r)) }
                    .map_err(|e| anyhow!("cannot watch the call stream's ring buffer: {e}"))?,
            ),
            None => None,
        };
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
        for sink in &mut self.sinks {
            sink.start()?;
        }
        // Sinks that can end the run (a live view's `q`).
        let mut stops = JoinSet::new();
        for rx in self.sinks.iter_mut().filter_map(|s| s.stop_request()) {
            stops.spawn(async move {
                let _ = rx.await;
            });
        }
        crate::say::line(format!(
            "tracer: tracing {}; Ctrl-C to stop",
            names.join(", ")
        ));

        let live_reports =
            self.collector.is_some() && self.sinks.iter().any(|s| s.wants_intervals());
        let aligned = live_reports && self.sinks.iter().any(|s| s.wants_aligned_intervals());
        let interval = self.cli.interval.unwrap_or(Duration::from_secs(1));
        // Intervals tile the run from its start, each `interval` long, when a sink wants
        // that (JSON); else the first report comes soon after tracer starts
        // (FIRST_REPORT), then every interval.
        let mut next = if aligned {
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
        let mut exe_next = self.started + EXE_LOOK;
        loop {
            tokio::select! {
                _ = sleep_until(exe_next.into()), if self.exe_watch.is_some() => {
                    if let Some(w) = self.exe_watch.as_mut() {
                        w.refresh()?;
                    }
                    exe_next = Instant::now() + EXE_LOOK;
                }
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
                    let (mut cur, at_ns) = self.sample()?;
                    self.drain(ring.as_mut(), &mut exits)?;
                    self.take_procs(&mut cur);
                    let window = self.window.next_window();
                    let mem = self.memory.as_mut().map(|m| {
                        m.tick(true); // "now" is now, not the last tick
                        m.read(&cur, &window.oom_kills, at_ns, &self.live)
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
                    emit(&self.ctx, &mut self.detector, &mut self.sinks, &w, |_| true)?;
                    (prev, prev_mem, prev_ns) = (cur, mem, at_ns);
                    // Ended processes now reported: the book folds all but the busiest,
                    // and the next window starts from what it keeps.
                    if let Some(b) = self.procs.as_mut() {
                        b.reclaim();
                        prev.procs = b.snapshot();
                    }
                    // Ended threads, reported, give back their kernel entries.
                    if self.ctx.threads
                        && let Some(c) = self.collector.as_mut()
                    {
                        c.reclaim_threads(&prev.threads);
                    }
                    // A report that comes late skips the boundaries it missed: the next
                    // window is longer, and they stay where they were.
                    next += interval;
                    let now = Instant::now();
                    while next <= now {
                        next += interval;
                    }
                }
                Ok(mut guard) = async { stream.as_mut().unwrap().readable_mut().await }, if stream.is_some() => {
                    guard.clear_ready();
                    drop(guard);
                    self.stream_out(stream.as_mut())?;
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
                _ = stops.join_next(), if !stops.is_empty() => break,
                _ = exits.join_next(), if !exits.is_empty() => {
                    // A fork just before the exit may still sit in the ring buffer.
                    self.drain(ring.as_mut(), &mut exits)?;
                    // Selected processes come and go, and a run feeding a monitoring system
                    // goes on: then only a signal or --duration ends it.
                    if exits.is_empty() && !self.cli.selecting() && !self.cli.serving() {
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
        // The last calls, the losses no later call carried, and the stream's totals,
        // before the final report.
        self.stream_out(stream.as_mut())?;
        if let Some(s) = stream.as_mut() {
            let mut rest = Vec::new();
            let summary = s.get_mut().0.finish(&mut rest)?;
            for sink in &mut self.sinks {
                sink.calls(&rest)?;
                sink.stream_summary(&summary)?;
            }
        }
        if self.collector.is_some() {
            // One reading ends both the last interval and the run.
            let (mut sample, at_ns) = self.sample()?;
            self.drain(ring.as_mut(), &mut exits)?;
            self.take_procs(&mut sample);
            let mem = self
                .memory
                .as_mut()
                .map(|m| m.read(&sample, &self.run_log.oom_kills, at_ns, &self.live));
            // The last, partial interval: from the last interval report to the end.
            if aligned && at_ns > prev_ns {
                let w = Window {
                    kind: ReportKind::Interval,
                    start_ns: prev_ns,
                    end_ns: at_ns,
                    counts: &sample.since(&prev),
                    events: &self.window,
                    memory: mem.as_ref().map(|m| (m, prev_mem.as_ref())),
                    command: None,
                };
                emit(&self.ctx, &mut self.detector, &mut self.sinks, &w, |s| {
                    s.wants_aligned_intervals()
                })?;
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
            emit(&self.ctx, &mut self.detector, &mut self.sinks, &w, |_| true)?;
            // What sinks still send (a last push), waited for.
            for sink in &mut self.sinks {
                if let Some(f) = sink.finish() {
                    f.await;
                }
            }
        } else {
            let secs = self.started.elapsed().as_secs_f64();
            crate::say::line(format!("tracer: floor programs attached for {secs:.3} s"));
        }
        Ok(command)
    }

    /// Hands the streamed calls waiting in the ring to the sinks.
    fn stream_out(&mut self, stream: Option<&mut AsyncFd<StreamRing>>) -> Result<()> {
        let Some(stream) = stream else { return Ok(()) };
        // In batches, so that a flood is written as it is read, in bounded memory.
        loop {
            let mut items: Vec<Item> = Vec::new();
            stream
                .get_mut()
                .0
                .drain(self.ctx.wall_offset_ns, STREAM_BATCH, &mut items);
            if items.is_empty() {
                return Ok(());
            }
            for sink in &mut self.sinks {
                sink.calls(&items)?;
            }
        }
    }

    /// Takes new events; children that `--follow` added are watched for their exit too.
    fn drain(&mut self, ring: Option<&mut AsyncFd<Ring>>, exits: &mut JoinSet<()>) -> Result<()> {
        let Some(ring) = ring else { return Ok(()) };
        let mut fresh = Vec::new();
        ring.get_mut().0.drain(&mut fresh);
        self.undecodable = ring.get_ref().0.undecodable;
        self.window.add(&fresh);
        self.run_log.add(&fresh);
        if let Some(b) = self.procs.as_mut() {
            b.events(&fresh);
        }
        if let Some(m) = self.memory.as_mut() {
            m.events(&fresh);
        }
        for e in &fresh {
            // A process a selector took in (at an exec, a rename, a cgroup move): /proc is
            // read for it too, if the pidfd opened names the process that was taken in.
            if let EventData::Taken(t) = e.data
                && !self.live.iter().any(|l| l.pid == e.header.tgid)
                && let Ok(fd) = target::pidfd_open(e.header.tgid)
            {
                let who = Live::new(e.header.tgid, e.header.slot, fd, Joined::Matched);
                if who.start_ticks == t.start_ns / ns_per_clock_tick() && who.is_running() {
                    if let Some(b) = self.procs.as_mut() {
                        b.join(&who);
                    }
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
                let child = Live::new(f.child_tgid, e.header.slot, fd, Joined::Followed);
                let started = f.child_start_ns / ns_per_clock_tick();
                if proc::start_and_parent(child.pid) == Some((started, e.header.tgid))
                    && child.is_running()
                {
                    watch(exits, child.watch_fd()?)?;
                    if let Some(b) = self.procs.as_mut() {
                        b.join(&child);
                    }
                    self.live.push(child);
                }
            }
        }
        Ok(())
    }

    /// The per-process counts, read after the ring buffer's exit events are taken (an
    /// ended process's final counts come with them).
    fn take_procs(&mut self, sample: &mut Sample) {
        if let Some(b) = self.procs.as_mut() {
            b.read(&self.live);
            sample.procs = b.snapshot();
        }
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
