//! The live view (`--tui`) without a terminal: what it keeps of the reports (a bounded
//! history of each figure, for the sparklines; cumulative calls; a log of events), the
//! state people change with keys (sort, pause, selection, pane, help), and its layout
//! (`draw`), which ratatui's test backend renders in the unit tests. The terminal, the
//! threads and the keys' source are the sink's (`sink/tui.rs`).
pub mod draw;

use std::collections::{BTreeMap, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{
    term::printable,
    text::{bytes, event_line, ns},
};
use crate::model::{
    Abi, ProcessInfo, Report, SyscallRow, events::ProcessEvent, memory, roles::Role,
};

/// Intervals of history kept per figure (the sparklines show the last ones that fit).
pub const HISTORY: usize = 60;
/// Lines kept in the event log.
pub const LOG_LINES: usize = 500;
/// A syscall slower than this (measured) is logged as a stall.
const STALL_NS: u64 = 1_000_000_000;
/// A run-queue p99 above this is logged as a stall.
const RUNQ_STALL_NS: u64 = 100_000_000;
/// Processes and threads whose own syscall rows are kept (see [`Owner`]); beyond, those
/// no longer reported are forgotten.
pub const OWNERS_KEPT: usize = 4096;
/// A line of the launched command's output is cut at this many bytes.
pub const OUTPUT_LINE_BYTES: usize = 400;

/// Whose figures: every target together (None), or one target's slot.
pub type Scope = Option<u32>;

/// Whose own syscall rows, from the per-thread tables (`--threads`): where processes share
/// a target's slot (followed children), the slot's table is theirs together, and these
/// narrow it to one process (its threads' rows summed) or one thread. They have calls and
/// errors, not latency percentiles or errnos.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    Process(u32),
    Thread { pid: u32, tid: u32 },
}

/// The last [`HISTORY`] values of each series, aligned: one value per interval for every
/// series (0 where a series had none), so that memory stays bounded.
#[derive(Clone, Debug)]
pub struct Rings<K: Ord> {
    len: usize,
    series: BTreeMap<K, VecDeque<f64>>,
}

impl<K: Ord> Default for Rings<K> {
    fn default() -> Self {
        Self {
            len: 0,
            series: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone> Rings<K> {
    /// One interval's values; series without one get 0, and a series that has been 0 for
    /// the whole history is forgotten.
    pub fn push(&mut self, mut values: BTreeMap<K, f64>) {
        let len = (self.len + 1).min(HISTORY);
        for (k, ring) in self.series.iter_mut() {
            ring.push_back(values.remove(k).unwrap_or(0.0));
            while ring.len() > len {
                ring.pop_front();
            }
        }
        for (k, v) in values {
            let mut ring: VecDeque<f64> = std::iter::repeat_n(0.0, len - 1).collect();
            ring.push_back(v);
            self.series.insert(k, ring);
        }
        self.series.retain(|_, r| r.iter().any(|&v| v != 0.0));
        self.len = len;
    }

    pub fn get(&self, k: &K) -> Option<&VecDeque<f64>> {
        self.series.get(k)
    }

    #[cfg(test)]
    pub fn series(&self) -> usize {
        self.series.len()
    }
}

/// A syscall's counts since the start (the sum of the interval reports, which tile the run).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cum {
    pub calls: u64,
    pub errors: u64,
    pub errnos: BTreeMap<String, u64>,
}

/// A line of the event log: whose (for narrowing), and what.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub pid: Option<u32>,
    pub text: String,
}

/// A scope's memory and descriptor figures in a report, and its process (for the log).
type ScopedMemory<'a> = (
    Scope,
    Option<u32>,
    Option<&'a memory::MemoryReport>,
    Option<&'a memory::FdReport>,
);

/// The launched command's output, as it comes in pieces, cut into lines: each at most
/// [`OUTPUT_LINE_BYTES`] (the rest of a longer one is dropped), invalid UTF-8 replaced.
/// Not yet escaped (see [`View::output`]).
#[derive(Debug, Default)]
pub struct OutputLines {
    partial: Vec<u8>,
    /// The line being read was longer than the bound: drop the rest of it.
    cut: bool,
}

/// A line of the command's output, and whether it was cut.
pub type OutputLine = (String, bool);

impl OutputLines {
    /// The lines that `bytes` end.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<OutputLine> {
        let mut lines = Vec::new();
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let (body, ends) = match piece.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (piece, false),
            };
            let room = OUTPUT_LINE_BYTES - self.partial.len();
            if body.len() > room {
                self.cut = true;
            }
            self.partial
                .extend_from_slice(&body[..body.len().min(room)]);
            if ends {
                lines.push(self.take());
            }
        }
        lines
    }

    /// The last line, when the output ends without a newline.
    pub fn end(&mut self) -> Option<OutputLine> {
        if self.partial.is_empty() && !self.cut {
            return None;
        }
        Some(self.take())
    }

    fn take(&mut self) -> OutputLine {
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        (line, std::mem::take(&mut self.cut))
    }
}

/// What the view keeps of the reports.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// The last interval report.
    pub last: Option<Report>,
    /// When the run's first window began (monotonic ns).
    pub t0_ns: Option<u64>,
    pub totals: BTreeMap<(Scope, String), Cum>,
    /// Calls per second of each syscall row, per interval.
    pub rates: Rings<(Scope, String)>,
    /// The per-thread tables' rows, by process and by thread, since the start, and their
    /// calls per second per interval (see [`Owner`]).
    pub own_totals: BTreeMap<(Owner, String), Cum>,
    pub own_rates: Rings<(Owner, String)>,
    /// RSS and open descriptors at each interval's end, and those ends (s since start).
    pub rss: Rings<Scope>,
    pub fds: Rings<Scope>,
    pub times: VecDeque<f64>,
    pub log: VecDeque<LogLine>,
    /// Lost events since the start.
    pub lost: u64,
    /// What was last logged of each anomaly that persists (not logged again each interval).
    said_fd_warning: BTreeMap<Scope, String>,
    said_eta: BTreeMap<Scope, bool>,
}

/// A syscall's row as the view shows it (figures of the last interval, and since the start).
#[derive(Clone, Debug, PartialEq)]
pub struct SysLine {
    pub name: String,
    pub calls: u64,
    pub rate: f64,
    pub errors: u64,
    pub top_errno: Option<(String, u64)>,
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
    pub max_is_bound: bool,
}

/// How a syscall row is named: `read`, or `read (i386)`.
pub fn row_name(row: &SyscallRow) -> String {
    match row.abi {
        Abi::X86_64 => row.name.clone(),
        Abi::I386 => format!("{} (i386)", row.name),
    }
}

fn event_pid(e: &ProcessEvent) -> u32 {
    match e {
        ProcessEvent::Fork { pid, .. }
        | ProcessEvent::Exec { pid, .. }
        | ProcessEvent::Exit { pid, .. }
        | ProcessEvent::Signal { pid, .. }
        | ProcessEvent::OomKill { pid, .. }
        | ProcessEvent::Taken { pid, .. }
        | ProcessEvent::Stall { pid, .. } => *pid,
    }
}

impl Model {
    /// Takes an interval report in.
    pub fn add(&mut self, r: &Report) {
        let t0 = *self.t0_ns.get_or_insert(r.start_mono_ns);
        let t_s = r.end_mono_ns.saturating_sub(t0) as f64 / 1e9;
        let mut rates = BTreeMap::new();
        let scopes = std::iter::once((None, &r.syscalls)).chain(
            r.processes
                .iter()
                .enumerate()
                .map(|(slot, p)| (Some(slot as u32), &p.syscalls)),
        );
        for (scope, rows) in scopes {
            for row in rows {
                let key = (scope, row_name(row));
                let c = self.totals.entry(key.clone()).or_default();
                c.calls += row.calls;
                c.errors += row.errors;
                for (e, n) in &row.errnos {
                    *c.errnos.entry(e.clone()).or_default() += n;
                }
                rates.insert(key, row.calls_per_s);
            }
        }
        self.rates.push(rates);
        self.add_own(r);
        let mut rss = BTreeMap::new();
        let mut fds = BTreeMap::new();
        if let Some(m) = &r.memory {
            rss.insert(None, m.rss.end_bytes as f64);
        }
        if let Some(f) = &r.fds {
            fds.insert(None, f.end as f64);
        }
        for (slot, p) in r.processes.iter().enumerate() {
            if let Some(m) = &p.memory {
                rss.insert(Some(slot as u32), m.rss.end_bytes as f64);
            }
            if let Some(f) = &p.fds {
                fds.insert(Some(slot as u32), f.end as f64);
            }
        }
        self.rss.push(rss);
        self.fds.push(fds);
        self.times.push_back(t_s);
        while self.times.len() > HISTORY {
            self.times.pop_front();
        }
        self.lost += r.lost_events;
        self.log_report(r, t_s);
        self.last = Some(r.clone());
    }

    /// The per-thread rows of an interval report (its threads' calls in the interval).
    fn add_own(&mut self, r: &Report) {
        let secs = r.duration_s.max(1e-9);
        let mut rates: BTreeMap<(Owner, String), f64> = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        // An id given again: what was kept under it was another process's (or thread's).
        for e in &r.events {
            if let ProcessEvent::Fork {
                pid,
                child_pid,
                child_tid,
                thread,
                ..
            } = *e
            {
                self.own_totals.retain(|(o, _), _| match *o {
                    Owner::Process(p) => thread || p != child_pid,
                    Owner::Thread { pid: p, tid } => {
                        if thread {
                            (p, tid) != (pid, child_tid)
                        } else {
                            p != child_pid
                        }
                    }
                });
            }
        }
        for t in r.sched.iter().flat_map(|s| &s.threads) {
            for c in &t.syscalls {
                for owner in [
                    Owner::Process(t.pid),
                    Owner::Thread {
                        pid: t.pid,
                        tid: t.tid,
                    },
                ] {
                    seen.insert(owner);
                    let key = (owner, c.name.clone());
                    let cum = self.own_totals.entry(key.clone()).or_default();
                    cum.calls += c.calls;
                    cum.errors += c.errors;
                    *rates.entry(key).or_default() += c.calls as f64 / secs;
                }
            }
        }
        self.own_rates.push(rates);
        // Bounded: past OWNERS_KEPT processes and threads, only those of this report stay.
        let mut owners = self.own_totals.keys().map(|(o, _)| *o).collect::<Vec<_>>();
        owners.dedup();
        if owners.len() > OWNERS_KEPT {
            self.own_totals.retain(|(o, _), _| seen.contains(o));
        }
    }

    /// Whether the per-thread tables gave rows of `owner`.
    pub fn has_own(&self, owner: Owner) -> bool {
        self.own_totals
            .range((owner, String::new())..)
            .next()
            .is_some_and(|((o, _), _)| *o == owner)
    }

    /// `owner`'s own rows (see [`Owner`]), with the last interval's rates.
    pub fn own_lines(&self, owner: Owner) -> Vec<SysLine> {
        self.own_totals
            .range((owner, String::new())..)
            .take_while(|((o, _), _)| *o == owner)
            .map(|((_, name), c)| SysLine {
                name: name.clone(),
                calls: c.calls,
                rate: self
                    .own_rates
                    .get(&(owner, name.clone()))
                    .and_then(|r| r.back().copied())
                    .unwrap_or(0.0),
                errors: c.errors,
                top_errno: None,
                p50: None,
                p99: None,
                max: None,
                max_is_bound: false,
            })
            .collect()
    }

    /// The events of a report, and what in it looks wrong, into the log.
    fn log_report(&mut self, r: &Report, t_s: f64) {
        let mut lines = Vec::new();
        for e in &r.events {
            // OOM kills come from the memory section's list when it is on (it has them all).
            if matches!(e, ProcessEvent::OomKill { .. }) && r.oom_kills.is_some() {
                continue;
            }
            lines.push(LogLine {
                pid: Some(event_pid(e)),
                text: event_line(e),
            });
        }
        if r.events_omitted > 0 {
            lines.push(LogLine {
                pid: None,
                text: format!("+{t_s:.3}s ({} more events)", r.events_omitted),
            });
        }
        for k in r.oom_kills.iter().flatten() {
            let who = if k.traced {
                "TRACED process"
            } else {
                "process"
            };
            lines.push(LogLine {
                pid: Some(k.pid),
                text: format!(
                    "+{:.3}s oom     the OOM killer killed {who} {} ({}), rss anon {}",
                    k.t_s,
                    k.pid,
                    printable(&k.comm),
                    bytes(k.anon_rss_bytes)
                ),
            });
        }
        if r.lost_events > 0 {
            lines.push(LogLine {
                pid: None,
                text: format!(
                    "+{t_s:.3}s lost    {} events in the interval",
                    r.lost_events
                ),
            });
        }
        for row in &r.syscalls {
            if let Some(max) = row.max_ns.filter(|&m| m >= STALL_NS && !row.max_is_bound) {
                lines.push(LogLine {
                    pid: None,
                    text: format!(
                        "+{t_s:.3}s stall   a {} call took {}",
                        row_name(row),
                        ns(max)
                    ),
                });
            }
        }
        for a in r.anomalies.iter().filter(|a| a.new) {
            let pid = r
                .processes
                .get(a.slot)
                .and_then(|p| (p.pid != 0).then_some(p.pid));
            lines.push(LogLine {
                pid,
                text: format!(
                    "+{t_s:.3}s anomaly {} {}: {}",
                    printable(&a.target),
                    a.syscall,
                    super::text::anomaly_what(a)
                ),
            });
        }
        if let Some(p99) = r
            .sched
            .as_ref()
            .and_then(|s| s.runqueue.p99_ns)
            .filter(|&p| p >= RUNQ_STALL_NS)
        {
            lines.push(LogLine {
                pid: None,
                text: format!("+{t_s:.3}s stall   run-queue waits p99 {}", ns(p99)),
            });
        }
        let mut scoped: Vec<ScopedMemory> = vec![(None, None, r.memory.as_ref(), r.fds.as_ref())];
        if r.processes.len() > 1 {
            for (slot, p) in r.processes.iter().enumerate() {
                let pid = (p.pid != 0).then_some(p.pid);
                scoped.push((Some(slot as u32), pid, p.memory.as_ref(), p.fds.as_ref()));
            }
        }
        for (scope, pid, m, f) in scoped {
            let warning = f.and_then(|f| f.warning.as_ref()).map(|w| w.to_string());
            if let Some(w) = &warning
                && self.said_fd_warning.get(&scope) != Some(w)
            {
                lines.push(LogLine {
                    pid,
                    text: format!("+{t_s:.3}s fds     {w}"),
                });
            }
            match warning {
                Some(w) => self.said_fd_warning.insert(scope, w),
                None => self.said_fd_warning.remove(&scope),
            };
            let eta = m.and_then(|m| m.limits.eta.as_ref());
            if let Some(e) = eta
                && !self.said_eta.get(&scope).copied().unwrap_or(false)
            {
                lines.push(LogLine {
                    pid,
                    text: format!(
                        "+{t_s:.3}s memory  growing {}/s: the {} limit ({}) is reached in {}",
                        bytes(e.rate_bytes_per_s as u64),
                        e.limit,
                        bytes(e.limit_bytes),
                        super::text::secs(e.eta_s)
                    ),
                });
            }
            self.said_eta.insert(scope, eta.is_some());
        }
        for l in lines {
            self.push_log(l);
        }
    }

    pub fn push_log(&mut self, l: LogLine) {
        self.log.push_back(l);
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
    }

    /// Seconds since the run began, at the last report.
    pub fn uptime_s(&self) -> f64 {
        self.times.back().copied().unwrap_or(0.0)
    }

    /// The syscall rows of a scope: every syscall seen since the start, with the last
    /// interval's figures (none where it made no call then).
    pub fn sys_lines(&self, scope: Scope) -> Vec<SysLine> {
        let last: BTreeMap<String, &SyscallRow> = self
            .last
            .as_ref()
            .map(|r| match scope {
                None => r.syscalls.as_slice(),
                Some(s) => r
                    .processes
                    .get(s as usize)
                    .map_or(&[][..], |p| p.syscalls.as_slice()),
            })
            .unwrap_or(&[])
            .iter()
            .map(|row| (row_name(row), row))
            .collect();
        self.totals
            .iter()
            .filter(|((s, _), _)| *s == scope)
            .map(|((_, name), c)| {
                let row = last.get(name);
                let top_errno = c
                    .errnos
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                    .map(|(e, n)| (e.clone(), *n));
                SysLine {
                    name: name.clone(),
                    calls: c.calls,
                    rate: row.map_or(0.0, |r| r.calls_per_s),
                    errors: c.errors,
                    top_errno,
                    p50: row.and_then(|r| r.p50_ns),
                    p99: row.and_then(|r| r.p99_ns),
                    max: row.and_then(|r| r.max_ns),
                    max_is_bound: row.is_some_and(|r| r.max_is_bound),
                }
            })
            .collect()
    }
}

/// The panes focus moves between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Syscalls,
    Procs,
    Events,
}

/// The syscall table's sortable columns, left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysCol {
    Name,
    Calls,
    Rate,
    Errors,
    P50,
    P99,
    Max,
}

pub const SYS_COLS: [SysCol; 7] = [
    SysCol::Name,
    SysCol::Calls,
    SysCol::Rate,
    SysCol::Errors,
    SysCol::P50,
    SysCol::P99,
    SysCol::Max,
];

/// The process and thread table's sortable columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcCol {
    Id,
    Name,
    Rate,
    Cpu,
    Rss,
    Fds,
}

pub const PROC_COLS: [ProcCol; 6] = [
    ProcCol::Id,
    ProcCol::Name,
    ProcCol::Rate,
    ProcCol::Cpu,
    ProcCol::Rss,
    ProcCol::Fds,
];

/// A column to sort by: names and ids ascending, figures largest first, unless reversed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort<C> {
    pub col: C,
    pub reverse: bool,
}

/// What a selection narrows the view to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    Process { pid: u32, slot: u32 },
    Thread { tid: u32, pid: u32, slot: u32 },
}

impl Selection {
    pub fn pid(&self) -> u32 {
        match *self {
            Selection::Process { pid, .. } | Selection::Thread { pid, .. } => pid,
        }
    }
    pub fn slot(&self) -> u32 {
        match *self {
            Selection::Process { slot, .. } | Selection::Thread { slot, .. } => slot,
        }
    }
}

/// A row of the process and thread table.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcLine {
    /// A thread of `pid` (its id `id`), or the process `pid` itself.
    pub thread: bool,
    pub id: u32,
    pub pid: u32,
    pub slot: u32,
    pub name: String,
    /// Calls per second in the last interval (processes).
    pub rate: Option<f64>,
    /// Share of a CPU in the last interval (threads; a process: its threads' sum).
    pub cpu: Option<f64>,
    pub rss: Option<u64>,
    pub fds: Option<u64>,
    /// A process: running, or how it ended; a thread: its role (`event loop`, `pool
    /// worker`, ...) while it runs, if one shows, else running or ended.
    pub state: String,
}

/// What a key asks of the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing changed.
    None,
    Redraw,
    /// Redraw everything (the screen may hold another program's output).
    Repaint,
    Quit,
}

/// tracer's own cost, shown in the header.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Own {
    /// Percent of one CPU over the last interval.
    pub cpu_pct: Option<f64>,
    pub rss_bytes: u64,
}

/// The whole view: the model (frozen while paused) and what people chose.
pub struct View {
    pub live: Model,
    frozen: Option<Box<Model>>,
    pub sys_sort: Sort<SysCol>,
    pub proc_sort: Sort<ProcCol>,
    pub focus: Pane,
    pub help: bool,
    pub sys_cursor: usize,
    pub proc_cursor: usize,
    /// Lines scrolled up from the newest in the event log.
    pub log_scroll: usize,
    pub selected: Option<Selection>,
    /// Colours and styles (off with NO_COLOR).
    pub colour: bool,
    pub interval_s: f64,
    pub own: Own,
    /// The last message said during the run.
    pub message: Option<String>,
    /// The run has ended (the final report came).
    pub finished: bool,
}

impl View {
    pub fn new(interval_s: f64, colour: bool) -> Self {
        View {
            live: Model::default(),
            frozen: None,
            sys_sort: Sort {
                col: SysCol::Rate,
                reverse: false,
            },
            proc_sort: Sort {
                col: ProcCol::Rate,
                reverse: false,
            },
            focus: Pane::Syscalls,
            help: false,
            sys_cursor: 0,
            proc_cursor: 0,
            log_scroll: 0,
            selected: None,
            colour,
            interval_s,
            own: Own::default(),
            message: None,
            finished: false,
        }
    }

    /// What is shown: the model as it was when paused, else the live one.
    pub fn shown(&self) -> &Model {
        self.frozen.as_deref().unwrap_or(&self.live)
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    pub fn add(&mut self, r: &Report) {
        self.live.add(r);
    }

    /// A line into the log, shown at once even while paused.
    fn log(&mut self, l: LogLine) {
        if let Some(f) = self.frozen.as_mut() {
            f.push_log(l.clone());
        }
        self.live.push_log(l);
    }

    /// A message said during the run: in the header, and in the log.
    pub fn say(&mut self, msg: String) {
        let msg = printable(&msg).into_owned();
        self.log(LogLine {
            pid: None,
            text: msg.clone(),
        });
        self.message = Some(msg);
    }

    /// A line the launched command `who` wrote, `t_s` after the run began: into the log,
    /// escaped (another user's output never reaches the terminal raw).
    pub fn output(&mut self, who: &ProcessInfo, t_s: f64, (line, cut): &OutputLine) {
        let cut = if *cut { " [cut]" } else { "" };
        self.log(LogLine {
            pid: Some(who.pid),
            text: format!(
                "+{t_s:.3}s output  {}: {}{cut}",
                printable(&ProcessInfo::name(who.pid, &who.comm)),
                printable(line)
            ),
        });
    }

    /// The targets, as the header names them.
    pub fn targets(&self) -> String {
        self.shown().last.as_ref().map_or_else(String::new, |r| {
            r.processes
                .iter()
                .map(|p| printable(&ProcessInfo::name(p.pid, &p.comm)).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// The scope the syscall, scheduling and memory panes show.
    pub fn scope(&self) -> Scope {
        self.selected.map(|s| s.slot())
    }

    /// Whether the selected process shares its target's slot with other processes (its
    /// syscall table is then theirs together).
    pub fn shares_slot(&self) -> bool {
        self.selected.is_some_and(|s| {
            self.shown().last.as_ref().is_some_and(|r| {
                r.per_process
                    .listed
                    .iter()
                    .filter(|e| e.slot == s.slot())
                    .count()
                    > 1
            })
        })
    }

    /// Whose own rows the syscall pane shows instead of its scope's table: a selected
    /// thread's, or a selected process's that shares its slot where the per-thread tables
    /// have its rows.
    pub fn own_scope(&self) -> Option<Owner> {
        match self.selected? {
            // Threads are listed from the per-thread tables: one without rows made no call.
            Selection::Thread { tid, pid, .. } => Some(Owner::Thread { pid, tid }),
            Selection::Process { pid, .. } if self.shares_slot() => {
                let owner = Owner::Process(pid);
                self.shown().has_own(owner).then_some(owner)
            }
            Selection::Process { .. } => None,
        }
    }

    /// The syscall rows shown, sorted.
    pub fn sys_rows(&self) -> Vec<SysLine> {
        let mut rows = match self.own_scope() {
            Some(owner) => self.shown().own_lines(owner),
            None => self.shown().sys_lines(self.scope()),
        };
        let s = self.sys_sort;
        rows.sort_by(|a, b| {
            let by = match s.col {
                SysCol::Name => a.name.cmp(&b.name),
                SysCol::Calls => b.calls.cmp(&a.calls),
                SysCol::Rate => b.rate.total_cmp(&a.rate),
                SysCol::Errors => b.errors.cmp(&a.errors),
                SysCol::P50 => b.p50.cmp(&a.p50),
                SysCol::P99 => b.p99.cmp(&a.p99),
                SysCol::Max => b.max.cmp(&a.max),
            };
            let by = by.then(b.calls.cmp(&a.calls)).then(a.name.cmp(&b.name));
            if s.reverse { by.reverse() } else { by }
        });
        rows
    }

    /// The process and thread rows: each process, then its threads, sorted alike.
    pub fn proc_rows(&self) -> Vec<ProcLine> {
        let Some(r) = self.shown().last.as_ref() else {
            return Vec::new();
        };
        let window_ns = (r.duration_s * 1e9).max(1.0);
        let threads: Vec<ProcLine> = r
            .sched
            .iter()
            .flat_map(|s| &s.threads)
            .map(|t| ProcLine {
                thread: true,
                id: t.tid,
                pid: t.pid,
                slot: 0,
                name: printable(&t.comm).into_owned(),
                rate: None,
                cpu: Some(t.on_cpu_ns as f64 / window_ns),
                rss: None,
                fds: None,
                state: match (t.alive, t.role) {
                    (false, _) => "ended".into(),
                    (true, Role::Other) => "running".into(),
                    (true, role) => role.name().into(),
                },
            })
            .collect();
        let mut procs: Vec<ProcLine> = r
            .per_process
            .listed
            .iter()
            .map(|e| ProcLine {
                thread: false,
                id: e.pid,
                pid: e.pid,
                slot: e.slot,
                name: printable(&e.comm).into_owned(),
                rate: Some(e.calls_per_s),
                cpu: None,
                rss: e.rss_bytes,
                fds: e.fds,
                state: match &e.end {
                    None => "running".into(),
                    Some(end) => match (&end.exit_code, &end.signal) {
                        (Some(c), _) => format!("exited {c}"),
                        (None, Some(s)) => format!("killed {s}"),
                        _ => "ended".into(),
                    },
                },
            })
            .collect();
        if procs.is_empty() {
            // No per-process list: the targets themselves.
            procs = r
                .processes
                .iter()
                .enumerate()
                .filter(|(_, p)| p.pid != 0)
                .map(|(slot, p)| ProcLine {
                    thread: false,
                    id: p.pid,
                    pid: p.pid,
                    slot: slot as u32,
                    name: printable(&p.comm).into_owned(),
                    rate: Some(p.totals.calls_per_s),
                    cpu: None,
                    rss: p.memory.as_ref().map(|m| m.rss.end_bytes),
                    fds: p.fds.as_ref().map(|f| f.end),
                    state: "running".into(),
                })
                .collect();
        }
        for p in procs.iter_mut() {
            let mine: Vec<&ProcLine> = threads.iter().filter(|t| t.pid == p.pid).collect();
            if !mine.is_empty() {
                p.cpu = Some(mine.iter().filter_map(|t| t.cpu).sum());
            }
        }
        let s = self.proc_sort;
        let order = |a: &ProcLine, b: &ProcLine| {
            let f = |v: Option<f64>| v.unwrap_or(-1.0);
            let by = match s.col {
                ProcCol::Id => a.id.cmp(&b.id),
                ProcCol::Name => a.name.cmp(&b.name),
                ProcCol::Rate => f(b.rate).total_cmp(&f(a.rate)),
                ProcCol::Cpu => f(b.cpu).total_cmp(&f(a.cpu)),
                ProcCol::Rss => b.rss.cmp(&a.rss),
                ProcCol::Fds => b.fds.cmp(&a.fds),
            }
            .then(a.id.cmp(&b.id));
            if s.reverse { by.reverse() } else { by }
        };
        procs.sort_by(order);
        let mut out = Vec::new();
        for p in procs {
            let mut mine: Vec<ProcLine> = threads
                .iter()
                .filter(|t| t.pid == p.pid)
                .cloned()
                .map(|mut t| {
                    t.slot = p.slot;
                    t
                })
                .collect();
            mine.sort_by(order);
            out.push(p);
            out.extend(mine);
        }
        out
    }

    /// The log lines shown (narrowed to the selected process's).
    pub fn log_lines(&self) -> Vec<&LogLine> {
        let pid = self.selected.map(|s| s.pid());
        self.shown()
            .log
            .iter()
            .filter(|l| pid.is_none() || l.pid.is_none() || l.pid == pid)
            .collect()
    }

    /// Handles a key.
    pub fn key(&mut self, k: KeyEvent) -> Action {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('q') | KeyCode::Char('Q') => return Action::Quit,
            KeyCode::Char('c') if ctrl => return Action::Quit,
            KeyCode::Char('l') if ctrl => return Action::Repaint,
            KeyCode::Char('?') | KeyCode::F(1) => self.help = !self.help,
            KeyCode::Esc if self.help => self.help = false,
            KeyCode::Esc => self.selected = None,
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                self.frozen = match self.frozen {
                    Some(_) => None,
                    None => Some(Box::new(self.live.clone())),
                };
            }
            KeyCode::Tab => {
                self.focus = match self.focus {
                    Pane::Syscalls => Pane::Procs,
                    Pane::Procs => Pane::Events,
                    Pane::Events => Pane::Syscalls,
                }
            }
            KeyCode::BackTab => {
                self.focus = match self.focus {
                    Pane::Syscalls => Pane::Events,
                    Pane::Procs => Pane::Syscalls,
                    Pane::Events => Pane::Procs,
                }
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_cursor(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_cursor(1),
            KeyCode::PageUp => self.move_cursor(-10),
            KeyCode::PageDown => self.move_cursor(10),
            KeyCode::Home => self.move_cursor(-1_000_000),
            KeyCode::Enter if self.focus == Pane::Procs => {
                let rows = self.proc_rows();
                if let Some(p) = rows.get(self.proc_cursor.min(rows.len().saturating_sub(1))) {
                    self.selected = Some(if p.thread {
                        Selection::Thread {
                            tid: p.id,
                            pid: p.pid,
                            slot: p.slot,
                        }
                    } else {
                        Selection::Process {
                            pid: p.pid,
                            slot: p.slot,
                        }
                    });
                    self.sys_cursor = 0;
                    self.log_scroll = 0;
                }
            }
            KeyCode::Char('<') | KeyCode::Left => self.sort_by(-1),
            KeyCode::Char('>') | KeyCode::Right => self.sort_by(1),
            KeyCode::Char('r') => match self.focus {
                Pane::Procs => self.proc_sort.reverse = !self.proc_sort.reverse,
                _ => self.sys_sort.reverse = !self.sys_sort.reverse,
            },
            _ => return Action::None,
        }
        Action::Redraw
    }

    fn move_cursor(&mut self, by: i64) {
        let step =
            |v: usize, len: usize| (v as i64 + by).clamp(0, len.saturating_sub(1) as i64) as usize;
        match self.focus {
            Pane::Syscalls => self.sys_cursor = step(self.sys_cursor, self.sys_rows().len()),
            Pane::Procs => self.proc_cursor = step(self.proc_cursor, self.proc_rows().len()),
            // Up scrolls back in time.
            Pane::Events => {
                let len = self.log_lines().len();
                self.log_scroll = (self.log_scroll as i64 - by).clamp(0, len as i64) as usize;
            }
        }
    }

    /// Sorts the focused table by the column `by` places to the right of its current one.
    fn sort_by(&mut self, by: i64) {
        fn next<C: Copy + PartialEq>(cols: &[C], cur: C, by: i64) -> C {
            let i = cols.iter().position(|&c| c == cur).unwrap_or(0) as i64;
            cols[(i + by).rem_euclid(cols.len() as i64) as usize]
        }
        match self.focus {
            Pane::Procs => {
                self.proc_sort = Sort {
                    col: next(&PROC_COLS, self.proc_sort.col, by),
                    reverse: false,
                }
            }
            _ => {
                self.sys_sort = Sort {
                    col: next(&SYS_COLS, self.sys_sort.col, by),
                    reverse: false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
