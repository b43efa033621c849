//! The live view's layout: which panes fit the terminal (a small one drops panes, least
//! needed first, rather than squeezing them), and each pane's lines. Numbers are formatted
//! by the text report's helpers, so both say the same.
use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Cell, Clear, Paragraph, Row, Table},
};

use super::{Owner, Pane, ProcCol, Scope, Selection, SysCol, SysLine, View};
use crate::{
    model::{blocked::BlockedBy, loops::LoopRow, roles::PoolRow},
    render::{
        term::printable,
        text::{bytes, causes, max_ns, ns, opt_ns, pool_line, rate, secs, stalled_now},
    },
};

/// Where each pane goes; None: it does not fit and is not drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub header: Option<Rect>,
    pub syscalls: Option<Rect>,
    pub sched: Option<Rect>,
    pub memory: Option<Rect>,
    pub procs: Option<Rect>,
    pub events: Option<Rect>,
    pub footer: Option<Rect>,
    /// The terminal is too small for anything but saying so.
    pub too_small: bool,
}

/// Terminals at least this wide put the panes side by side.
const WIDE: u16 = 110;
const SCHED_H: u16 = 6;
const MEMORY_H: u16 = 5;
const HEADER_H: u16 = 2;
/// The syscall table's least height (borders, its header, two rows).
const SYS_MIN: u16 = 5;

fn rect(x: u16, y: u16, width: u16, height: u16) -> Rect {
    Rect {
        x,
        y,
        width,
        height,
    }
}

/// The layout of the view for a terminal of `area`.
pub fn plan_for(v: &View, area: Rect) -> Plan {
    plan(area, sched_height(v))
}

/// The layout for a terminal of `area`, with a scheduling pane that would take `sched_h`
/// lines (it gets at least [`SCHED_H`] where it fits, more where there is room).
pub fn plan(area: Rect, sched_h: u16) -> Plan {
    let mut p = Plan::default();
    if area.width < 24 || area.height < HEADER_H + SYS_MIN {
        p.too_small = true;
        return p;
    }
    p.header = Some(rect(area.x, area.y, area.width, HEADER_H));
    let mut bottom = area.y + area.height;
    if area.height >= 14 {
        bottom -= 1;
        p.footer = Some(rect(area.x, bottom, area.width, 1));
    }
    let top = area.y + HEADER_H;
    let h = bottom - top;
    if area.width >= WIDE && h >= 12 {
        // Syscalls with scheduling and memory beside them; processes and events below.
        let upper = if h >= 20 { h * 3 / 5 } else { h };
        let left_w = area.width * 3 / 5;
        p.syscalls = Some(rect(area.x, top, left_w, upper));
        let rx = area.x + left_w;
        let rw = area.width - left_w;
        let sh = sched_h
            .min(upper.saturating_sub(MEMORY_H))
            .max(SCHED_H.min(upper));
        p.sched = Some(rect(rx, top, rw, sh));
        if upper >= sh + MEMORY_H {
            p.memory = Some(rect(rx, top + sh, rw, upper - sh));
        }
        if h > upper {
            let half = area.width / 2;
            p.procs = Some(rect(area.x, top + upper, half, h - upper));
            p.events = Some(rect(
                area.x + half,
                top + upper,
                area.width - half,
                h - upper,
            ));
        }
        return p;
    }
    // One column: panes in order of need, while each gets its least height.
    const PROCS_MIN: u16 = 5;
    const EVENTS_MIN: u16 = 4;
    let mut used = SYS_MIN;
    let mut take = |need: u16| {
        let ok = used + need <= h;
        if ok {
            used += need;
        }
        ok
    };
    let sched = take(SCHED_H);
    let memory = area.width >= 40 && take(MEMORY_H);
    let procs = take(PROCS_MIN);
    let events = take(EVENTS_MIN);
    // What is left goes to the scheduling pane's further lines (half of it at most), then
    // to the syscall table, half of that to the two lists.
    let mut spare = h - used;
    let sched_extra = if sched {
        sched_h.saturating_sub(SCHED_H).min(spare / 2)
    } else {
        0
    };
    spare -= sched_extra;
    let list_extra = if procs || events { spare / 2 } else { 0 };
    let mut y = top;
    let mut place = |on: bool, height: u16| {
        let r = on.then(|| rect(area.x, y, area.width, height));
        if on {
            y += height;
        }
        r
    };
    p.syscalls = place(true, SYS_MIN + spare - list_extra);
    p.sched = place(sched, SCHED_H + sched_extra);
    p.memory = place(memory, MEMORY_H);
    let (pe, ee) = match (procs, events) {
        (true, true) => (list_extra - list_extra / 2, list_extra / 2),
        (true, false) => (list_extra, 0),
        (false, true) => (0, list_extra),
        _ => (0, 0),
    };
    p.procs = place(procs, PROCS_MIN + pe);
    p.events = place(events, EVENTS_MIN + ee);
    p
}

impl View {
    fn style(&self, s: Style) -> Style {
        if self.colour { s } else { Style::default() }
    }

    fn block<'a>(&self, title: String, pane: Option<Pane>) -> Block<'a> {
        let focused = pane.is_some_and(|p| p == self.focus);
        let b = Block::bordered().title(format!(" {title} "));
        if focused {
            b.border_style(self.style(Style::default().fg(Color::Cyan)))
                .title_style(self.style(Style::default().add_modifier(Modifier::BOLD)))
        } else {
            b
        }
    }
}

/// A pane's drawing function.
type DrawPane = fn(&mut Frame, &View, Rect);

/// The view, on a frame of any size.
pub fn draw(f: &mut Frame, v: &View) {
    let area = f.area();
    let p = plan_for(v, area);
    if p.too_small {
        f.render_widget(
            Paragraph::new(format!(
                "tracer: the terminal ({}x{}) is too small",
                area.width, area.height
            )),
            area,
        );
        return;
    }
    let panes: [(Option<Rect>, DrawPane); 6] = [
        (p.header, header),
        (p.syscalls, syscalls),
        (p.sched, sched),
        (p.memory, memory),
        (p.procs, procs),
        (p.events, events),
    ];
    for (at, pane) in panes {
        if let Some(r) = at {
            pane(f, v, r);
        }
    }
    if let Some(r) = p.footer {
        f.render_widget(
            Paragraph::new(
                "q quit  p pause  tab pane  ↑↓ move  enter select  esc all  < > sort  r reverse  ? help",
            )
            .style(v.style(Style::default().fg(Color::DarkGray))),
            r,
        );
    }
    if v.help {
        help(f, v, area);
    }
}

fn hms(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn header(f: &mut Frame, v: &View, r: Rect) {
    let m = v.shown();
    let mut first = vec![
        Span::styled(
            "tracer ",
            v.style(Style::default().add_modifier(Modifier::BOLD)),
        ),
        Span::raw(v.targets()),
        Span::raw(format!(
            "  up {}  interval {} s  lost events {}  tracer cpu {} rss {}",
            hms(m.uptime_s()),
            v.interval_s,
            m.lost,
            v.own
                .cpu_pct
                .map_or("-".to_string(), |c| format!("{c:.1}%")),
            bytes(v.own.rss_bytes)
        )),
    ];
    if v.paused() {
        first.push(Span::styled(
            "  PAUSED",
            v.style(Style::default().add_modifier(Modifier::REVERSED)),
        ));
    }
    if v.finished {
        first.push(Span::raw("  (ended)"));
    }
    let who = match v.selected {
        None => "showing: all targets".to_string(),
        Some(Selection::Process { pid, .. }) => format!("showing: process {pid}"),
        Some(Selection::Thread { tid, pid, .. }) => format!("showing: thread {tid} of {pid}"),
    };
    let second = match &v.message {
        Some(msg) => format!("{who}  | {msg}"),
        None => who,
    };
    f.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        r,
    );
}

/// The last `width` values as bars, scaled to their largest; blank where 0.
pub fn spark(
    values: impl DoubleEndedIterator<Item = f64> + ExactSizeIterator,
    width: usize,
) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let n = values.len();
    let shown: Vec<f64> = values.skip(n.saturating_sub(width)).collect();
    let top = shown.iter().copied().fold(0.0, f64::max);
    let mut s: String = shown
        .iter()
        .map(|&x| {
            if x <= 0.0 || top <= 0.0 {
                ' '
            } else {
                BARS[(((x / top) * 8.0).ceil() as usize).clamp(1, 8) - 1]
            }
        })
        .collect();
    while s.chars().count() < width {
        s.insert(0, ' ');
    }
    s
}

/// A share (0..=1) as a bar of `width` cells.
pub fn bar(share: f64, width: usize) -> String {
    let full = ((share.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(full), "░".repeat(width - full))
}

struct Col {
    title: &'static str,
    width: u16,
    sort: Option<SysCol>,
    /// Lower numbers are kept first when the pane is narrow.
    keep: u8,
}

const SYS_TABLE: [Col; 9] = [
    Col {
        title: "syscall",
        width: 18,
        sort: Some(SysCol::Name),
        keep: 0,
    },
    Col {
        title: "calls",
        width: 10,
        sort: Some(SysCol::Calls),
        keep: 1,
    },
    Col {
        title: "calls/s",
        width: 9,
        sort: Some(SysCol::Rate),
        keep: 2,
    },
    Col {
        title: "trend",
        width: 12,
        sort: None,
        keep: 5,
    },
    Col {
        title: "errors",
        width: 8,
        sort: Some(SysCol::Errors),
        keep: 3,
    },
    Col {
        title: "top errno",
        width: 16,
        sort: None,
        keep: 7,
    },
    Col {
        title: "p50",
        width: 8,
        sort: Some(SysCol::P50),
        keep: 6,
    },
    Col {
        title: "p99",
        width: 8,
        sort: Some(SysCol::P99),
        keep: 4,
    },
    Col {
        title: "max",
        width: 9,
        sort: Some(SysCol::Max),
        keep: 8,
    },
];

fn sys_cell(v: &View, scope: Scope, col: usize, l: &SysLine) -> String {
    match col {
        0 => l.name.clone(),
        1 => l.calls.to_string(),
        2 => rate(l.rate),
        3 => {
            let ring = match v.own_scope() {
                Some(owner) => v.shown().own_rates.get(&(owner, l.name.clone())),
                None => v.shown().rates.get(&(scope, l.name.clone())),
            };
            ring.map_or_else(
                || spark(std::iter::empty(), 12),
                |r| spark(r.iter().copied(), 12),
            )
        }
        4 => l.errors.to_string(),
        5 => l
            .top_errno
            .as_ref()
            .map_or(String::new(), |(e, n)| format!("{e}:{n}")),
        6 => opt_ns(l.p50),
        7 => opt_ns(l.p99),
        _ => max_ns(l.max, l.max_is_bound),
    }
}

/// The columns that fit `width`, in table order.
fn fitting(width: u16) -> Vec<usize> {
    let mut by_keep: Vec<usize> = (0..SYS_TABLE.len()).collect();
    by_keep.sort_by_key(|&i| SYS_TABLE[i].keep);
    let mut used = 2; // the cursor mark
    let mut chosen = Vec::new();
    for i in by_keep {
        let w = SYS_TABLE[i].width + 1;
        if used + w <= width {
            used += w;
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    chosen
}

fn syscalls(f: &mut Frame, v: &View, r: Rect) {
    let rows = v.sys_rows();
    let scope = v.scope();
    let sort = v.sys_sort;
    let title = match (v.selected, v.own_scope()) {
        (None, _) => "syscalls".to_string(),
        (Some(_), Some(Owner::Thread { tid, .. })) => {
            format!("syscalls of thread {tid} (its own rows: no latencies)")
        }
        (Some(_), Some(Owner::Process(pid))) => {
            format!("syscalls of {pid} (its threads' rows: no latencies)")
        }
        (Some(s), None) if v.shares_slot() => format!(
            "syscalls of the target {} counts under (its processes together; --threads narrows it)",
            s.pid()
        ),
        (Some(s), None) => format!("syscalls of {}", s.pid()),
    };
    let block = v.block(
        format!("{title} ({} rows)", rows.len()),
        Some(Pane::Syscalls),
    );
    let inner_w = r.width.saturating_sub(2);
    let cols = fitting(inner_w);
    let head = Row::new(
        std::iter::once(Cell::from(" ")).chain(cols.iter().map(|&i| {
            let c = &SYS_TABLE[i];
            let mark = match c.sort {
                Some(s) if s == sort.col => {
                    if sort.reverse {
                        "↑"
                    } else {
                        "↓"
                    }
                }
                _ => "",
            };
            Cell::from(format!("{}{mark}", c.title))
        })),
    )
    .style(v.style(Style::default().add_modifier(Modifier::BOLD)));
    let (cursor, first, visible) = scrolled(r, v.sys_cursor, rows.len());
    let body = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(i, l)| {
            let here = i == cursor && v.focus == Pane::Syscalls;
            let row = Row::new(
                std::iter::once(Cell::from(if here { ">" } else { " " }))
                    .chain(cols.iter().map(|&c| Cell::from(sys_cell(v, scope, c, l)))),
            );
            let style = if here {
                Style::default().add_modifier(Modifier::REVERSED)
            } else if l.errors > 0 {
                Style::default().fg(Color::Yellow)
            } else {
                Style::default()
            };
            row.style(v.style(style))
        });
    let widths = std::iter::once(Constraint::Length(1))
        .chain(cols.iter().map(|&i| Constraint::Length(SYS_TABLE[i].width)));
    f.render_widget(Table::new(body, widths).header(head).block(block), r);
}

/// On-CPU, run-queue and blocked time, and what the scheduling lines show.
struct SchedFigures<'a> {
    on: u64,
    runq: u64,
    blocked: u64,
    blocked_by: &'a BlockedBy,
    p99: Option<u64>,
    voluntary_per_s: f64,
    involuntary_per_s: f64,
}

/// Loop threads listed in the scheduling pane (the longest iterations first).
const LOOPS_SHOWN: usize = 5;

/// A cause's name without its explanation: `uninterruptible`.
fn short(name: &str) -> &str {
    name.split(" (").next().unwrap_or(name)
}

/// Blocked time by cause, for the scheduling pane: waiting for work, then waiting on
/// something, each with its share of the blocked time and its two largest causes'.
fn blocked_lines(b: &BlockedBy) -> Vec<String> {
    let total = b.total_ns();
    if total == 0 {
        return Vec::new();
    }
    let pct = |n: u64| format!("{:.0}%", 100.0 * n as f64 / total as f64);
    let group = |label: &str, n: u64, idle: bool| {
        let mut top = causes(b, idle);
        top.sort_by_key(|c| std::cmp::Reverse(c.1));
        let top: Vec<String> = top
            .iter()
            .take(2)
            .map(|(name, n)| format!("{} {}", short(name), pct(*n)))
            .collect();
        let mut l = format!("{label} {}", pct(n));
        if !top.is_empty() {
            l += &format!(" ({})", top.join(", "));
        }
        l
    };
    let mut lines = vec![
        format!(
            "{:<10}{}",
            "blocked",
            group("for work", b.waiting_for_work_ns, true)
        ),
        format!(
            "{:<10}{}",
            "",
            group("on something", b.waiting_on_something_ns, false)
        ),
    ];
    if b.unknown_ns > 0 {
        lines[1] += &format!("; since before tracing {}", pct(b.unknown_ns));
    }
    lines
}

/// `parts` (each after its separator), as many as fit `width` (0: all).
fn fitting_parts(parts: &[(&str, String)], width: usize) -> String {
    let mut line = String::new();
    for (i, (sep, p)) in parts.iter().enumerate() {
        let n = line.chars().count() + sep.chars().count() + p.chars().count();
        if width > 0 && i > 0 && n > width {
            break;
        }
        line += sep;
        line += p;
    }
    line
}

/// An event loop's line: its thread, a stall going on, its stalls and iterations' busy
/// time (what does not fit `width` left out).
fn loop_line(l: &LoopRow, width: usize) -> String {
    let mut parts = vec![("", format!("loop {} {}", l.tid, printable(&l.comm)))];
    parts.extend(stalled_now(l).map(|s| ("  ", s)));
    parts.push(("  ", format!("stalls {}", l.stalls)));
    parts.push((
        "  ",
        format!(
            "p50 {} p99 {} max {}",
            opt_ns(l.p50_ns),
            opt_ns(l.p99_ns),
            opt_ns(l.max_ns),
        ),
    ));
    fitting_parts(&parts, width)
}

/// The scheduling pane's lines, each with how much it is needed (lower is kept first when
/// the pane is short), for a pane `width` wide.
fn sched_lines(v: &View, width: u16) -> Vec<(u8, Line<'static>)> {
    let m = v.shown();
    let Some(rep) = m.last.as_ref() else {
        return vec![(
            0,
            Line::from("no scheduling figures (sched section off, or none yet)"),
        )];
    };
    let secs_w = rep.duration_s.max(1e-9);
    let merged = rep.sched.as_ref();
    let (figures, loops, pools): (Option<SchedFigures>, Vec<&LoopRow>, Vec<&PoolRow>) =
        match v.selected {
            Some(Selection::Thread { tid, .. }) => (
                merged
                    .and_then(|s| s.threads.iter().find(|t| t.tid == tid))
                    .map(|t| SchedFigures {
                        on: t.on_cpu_ns,
                        runq: t.runqueue_ns,
                        blocked: t.blocked_ns,
                        blocked_by: &t.blocked_by,
                        p99: t.runqueue.p99_ns,
                        voluntary_per_s: t.voluntary_switches as f64 / secs_w,
                        involuntary_per_s: t.involuntary_switches as f64 / secs_w,
                    }),
                rep.loops.iter().filter(|l| l.tid == tid).collect(),
                merged
                    .iter()
                    .flat_map(|s| &s.pools)
                    .filter(|p| p.tids.contains(&tid))
                    .collect(),
            ),
            sel => {
                let s = match sel {
                    Some(s) => rep
                        .processes
                        .get(s.slot() as usize)
                        .and_then(|p| p.sched.as_ref()),
                    None => merged,
                };
                let pid = sel.map(|s| s.pid());
                (
                    s.map(|s| SchedFigures {
                        on: s.on_cpu_ns,
                        runq: s.off_cpu_ns - s.blocked_ns,
                        blocked: s.blocked_ns,
                        blocked_by: &s.blocked_by,
                        p99: s.runqueue.p99_ns,
                        voluntary_per_s: s.voluntary_per_s,
                        involuntary_per_s: s.involuntary_per_s,
                    }),
                    rep.loops
                        .iter()
                        .filter(|l| pid.is_none_or(|p| l.pid == p))
                        .collect(),
                    merged
                        .iter()
                        .flat_map(|s| &s.pools)
                        .filter(|p| pid.is_none_or(|pid| p.pid == pid))
                        .collect(),
                )
            }
        };
    let inner = width.saturating_sub(2) as usize;
    let mut lines: Vec<(u8, Line)> = Vec::new();
    match figures {
        None => lines.push((
            0,
            Line::from("no scheduling figures (sched section off, or none yet)"),
        )),
        Some(s) => {
            let wall = (s.on + s.runq + s.blocked).max(1) as f64;
            let w = (width as usize).saturating_sub(32).clamp(4, 30);
            let line = |name: &str, t: u64, colour: Color| {
                Line::from(vec![
                    Span::raw(format!("{name:<10}")),
                    Span::styled(
                        bar(t as f64 / wall, w),
                        v.style(Style::default().fg(colour)),
                    ),
                    Span::raw(format!(" {:>3.0}% {:>9}", 100.0 * t as f64 / wall, ns(t))),
                ])
            };
            lines.push((1, line("on-CPU", s.on, Color::Green)));
            lines.push((1, line("run queue", s.runq, Color::Red)));
            lines.push((1, line("blocked", s.blocked, Color::Blue)));
            for (i, l) in blocked_lines(s.blocked_by).into_iter().enumerate() {
                lines.push((2 + i as u8, Line::from(l)));
            }
            let parts = [
                ("", format!("run-queue p99 {}", opt_ns(s.p99))),
                (
                    "  ",
                    format!(
                        "switches {}/s",
                        rate(s.voluntary_per_s + s.involuntary_per_s)
                    ),
                ),
                (
                    " ",
                    format!(
                        "(voluntary {}/s, involuntary {}/s)",
                        rate(s.voluntary_per_s),
                        rate(s.involuntary_per_s)
                    ),
                ),
            ];
            lines.push((3, Line::from(fitting_parts(&parts, inner))));
        }
    }
    // A loop stalled now and a saturated pool are kept first, before the bars.
    let alarm = v.style(Style::default().fg(Color::Red).add_modifier(Modifier::BOLD));
    for l in loops.iter().take(LOOPS_SHOWN) {
        let text = loop_line(l, inner);
        lines.push(if l.stalled_now_ns.is_some() {
            (0, Line::styled(text, alarm))
        } else {
            (4, Line::from(text))
        });
    }
    let more = loops.len().saturating_sub(LOOPS_SHOWN) as u64
        + if v.selected.is_none() {
            rep.loops_omitted
        } else {
            0
        };
    if more > 0 {
        lines.push((5, Line::from(format!("({more} more loop threads)"))));
    }
    for p in pools {
        let text = pool_line(p, false);
        lines.push(if p.saturated {
            (0, Line::styled(text, alarm))
        } else {
            (4, Line::from(text))
        });
    }
    lines
}

/// The scheduling pane's height for all its lines (their number does not depend on the
/// width).
pub fn sched_height(v: &View) -> u16 {
    (sched_lines(v, 0).len() as u16 + 2).max(SCHED_H)
}

/// The `n` lines most needed, in their order.
fn most_needed(lines: Vec<(u8, Line<'static>)>, n: usize) -> Vec<Line<'static>> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by_key(|&i| (lines[i].0, i));
    order.truncate(n);
    lines
        .into_iter()
        .enumerate()
        .filter(|(i, _)| order.contains(i))
        .map(|(_, (_, l))| l)
        .collect()
}

fn sched(f: &mut Frame, v: &View, r: Rect) {
    let lines = most_needed(sched_lines(v, r.width), r.height.saturating_sub(2) as usize);
    let block = v.block("scheduling (last interval)".into(), None);
    f.render_widget(Paragraph::new(lines).block(block), r);
}

/// Seconds until a series growing as its recent history does reaches `limit`.
fn series_eta(
    times: &std::collections::VecDeque<f64>,
    values: &std::collections::VecDeque<f64>,
    limit: Option<u64>,
) -> Option<f64> {
    let n = times.len().min(values.len());
    let pts: Vec<(f64, f64)> = times
        .iter()
        .skip(times.len() - n)
        .copied()
        .zip(values.iter().skip(values.len() - n).copied())
        .collect();
    let slope = crate::model::memory::fit_slope(pts.iter().copied())?;
    let now = pts.last()?.1;
    crate::model::memory::eta_s(now as u64, limit, slope)
}

fn memory(f: &mut Frame, v: &View, r: Rect) {
    let m = v.shown();
    let scope = v.scope();
    let report = m.last.as_ref();
    let (mem, fds) = match (report, scope) {
        (Some(rep), None) => (rep.memory.as_ref(), rep.fds.as_ref()),
        (Some(rep), Some(slot)) => rep
            .processes
            .get(slot as usize)
            .map_or((None, None), |p| (p.memory.as_ref(), p.fds.as_ref())),
        _ => (None, None),
    };
    let block = v.block("memory and descriptors".into(), None);
    let spark_w = 12;
    let gauge_w = (r.width as usize).saturating_sub(60).clamp(4, 20);
    let mut lines = Vec::new();
    match mem {
        None => lines.push(Line::from(
            "no memory figures (memory section off, a selector's entry, or none yet)",
        )),
        Some(mem) => {
            let rss = mem.rss.end_bytes;
            let ring = m.rss.get(&scope);
            lines.push(Line::from(format!(
                "rss  {:>10} {}  peak {}",
                bytes(rss),
                ring.map_or_else(
                    || spark(std::iter::empty(), spark_w),
                    |r| spark(r.iter().copied(), spark_w)
                ),
                bytes(mem.rss.peak_bytes)
            )));
            let l = &mem.limits;
            let limit = l
                .cgroup
                .as_ref()
                .and_then(|c| c.limit_bytes.map(|b| ("cgroup", b)))
                .or(l.rlimit_as_bytes.map(|b| ("RLIMIT_AS", b)))
                .or(l.rlimit_data_bytes.map(|b| ("RLIMIT_DATA", b)));
            lines.push(Line::from(match (limit, &l.eta) {
                (Some((what, b)), eta) => {
                    let share = rss as f64 / b.max(1) as f64;
                    let eta = eta.as_ref().map_or(String::new(), |e| {
                        format!("  the {} limit in {}", e.limit, secs(e.eta_s))
                    });
                    format!(
                        "     {what} limit {} {} {:.0}%{eta}",
                        bytes(b),
                        bar(share, gauge_w),
                        100.0 * share
                    )
                }
                (None, _) => "     no memory limit".to_string(),
            }));
        }
    }
    if let Some(fd) = fds {
        let ring = m.fds.get(&scope);
        let mut s = format!(
            "fds  {:>10} {}",
            fd.end,
            ring.map_or_else(
                || spark(std::iter::empty(), spark_w),
                |r| spark(r.iter().copied(), spark_w)
            )
        );
        match fd.limit {
            Some(lim) => {
                let share = fd.end as f64 / lim.max(1) as f64;
                s.push_str(&format!(
                    "  of RLIMIT_NOFILE {lim} {} {:.0}%",
                    bar(share, gauge_w),
                    100.0 * share
                ));
                if let Some(eta) = ring.and_then(|r| series_eta(&m.times, r, Some(lim))) {
                    s.push_str(&format!("  reached in {}", secs(eta)));
                }
            }
            None => s.push_str("  no limit"),
        }
        lines.push(Line::from(s));
    }
    f.render_widget(Paragraph::new(lines).block(block), r);
}

fn procs(f: &mut Frame, v: &View, r: Rect) {
    let rows = v.proc_rows();
    let sort = v.proc_sort;
    let cols: [(&str, ProcCol, u16); 6] = [
        ("pid/tid", ProcCol::Id, 9),
        ("name", ProcCol::Name, 16),
        ("calls/s", ProcCol::Rate, 9),
        ("cpu", ProcCol::Cpu, 6),
        ("rss", ProcCol::Rss, 10),
        ("fds", ProcCol::Fds, 6),
    ];
    let head = Row::new(
        std::iter::once(Cell::from(" "))
            .chain(cols.iter().map(|(t, c, _)| {
                let mark = if *c == sort.col {
                    if sort.reverse { "↑" } else { "↓" }
                } else {
                    ""
                };
                Cell::from(format!("{t}{mark}"))
            }))
            .chain(std::iter::once(Cell::from("state"))),
    )
    .style(v.style(Style::default().add_modifier(Modifier::BOLD)));
    let threads_note = if rows.iter().any(|p| p.thread) {
        ""
    } else {
        ", --threads lists threads"
    };
    let block = v.block(
        format!("processes and threads ({} rows{threads_note})", rows.len()),
        Some(Pane::Procs),
    );
    let (cursor, first, visible) = scrolled(r, v.proc_cursor, rows.len());
    let body = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(i, p)| {
            let here = i == cursor && v.focus == Pane::Procs;
            let chosen = v.selected.is_some_and(|s| match s {
                Selection::Process { pid, .. } => !p.thread && p.pid == pid,
                Selection::Thread { tid, .. } => p.thread && p.id == tid,
            });
            let mark = match (here, chosen) {
                (true, _) => ">",
                (false, true) => "*",
                _ => " ",
            };
            let id = if p.thread {
                format!("  {}", p.id)
            } else {
                p.id.to_string()
            };
            let cells = vec![
                mark.to_string(),
                id,
                p.name.clone(),
                p.rate.map_or("-".into(), rate),
                p.cpu.map_or("-".into(), |c| format!("{:.0}%", 100.0 * c)),
                p.rss.map_or("-".into(), bytes),
                p.fds.map_or("-".into(), |n| n.to_string()),
                p.state.clone(),
            ];
            let style = if here {
                Style::default().add_modifier(Modifier::REVERSED)
            } else if chosen {
                Style::default().add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            Row::new(cells).style(v.style(style))
        });
    let widths = std::iter::once(Constraint::Length(1))
        .chain(cols.iter().map(|c| Constraint::Length(c.2)))
        .chain(std::iter::once(Constraint::Min(8)));
    f.render_widget(Table::new(body, widths).header(head).block(block), r);
}

/// `text` in rows of `width` characters at most, the rows after the first indented by two;
/// broken at a space where one is in the row's second half.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(4);
    let chars: Vec<char> = text.chars().collect();
    let mut rows = Vec::new();
    let mut at = 0;
    while at < chars.len() || rows.is_empty() {
        let (indent, room) = if rows.is_empty() {
            ("", width)
        } else {
            ("  ", width - 2)
        };
        let mut end = (at + room).min(chars.len());
        let mut next = end;
        if end < chars.len()
            && let Some(space) = (at + room / 2..end).rev().find(|&i| chars[i] == ' ')
        {
            (end, next) = (space, space + 1);
        }
        rows.push(format!(
            "{indent}{}",
            chars[at..end].iter().collect::<String>()
        ));
        at = next;
    }
    rows
}

fn events(f: &mut Frame, v: &View, r: Rect) {
    let lines = v.log_lines();
    let visible = r.height.saturating_sub(2) as usize;
    let end = lines.len().saturating_sub(v.log_scroll.min(lines.len()));
    let start = end.saturating_sub(visible);
    let title = if v.log_scroll > 0 {
        format!(
            "events ({} lines, {} newer below)",
            lines.len(),
            v.log_scroll
        )
    } else {
        format!("events ({} lines)", lines.len())
    };
    // The newest lines, wrapped, that fill the pane; the oldest may show its end only.
    let width = r.width.saturating_sub(2) as usize;
    let mut rows: Vec<String> = Vec::new();
    for l in lines[start..end].iter().rev() {
        if rows.len() >= visible {
            break;
        }
        rows.extend(wrap(&l.text, width).into_iter().rev());
    }
    rows.truncate(visible);
    let text: Vec<Line> = rows.into_iter().rev().map(Line::from).collect();
    f.render_widget(
        Paragraph::new(text).block(v.block(title, Some(Pane::Events))),
        r,
    );
}

const HELP: &[&str] = &[
    "q, Ctrl-C     quit (the final summary is printed)",
    "p, space      pause / resume the display (tracing goes on)",
    "tab           next pane (syscalls, processes, events)",
    "up/down, j/k  move in the pane (events: scroll)",
    "enter         processes: narrow every pane to the process or thread",
    "esc           all targets again (or close this help)",
    "< >           sort the pane by the column left / right",
    "r             reverse the sort",
    "Ctrl-L        redraw the screen",
    "?             this help",
];

fn help(f: &mut Frame, v: &View, area: Rect) {
    let w = (HELP.iter().map(|l| l.len()).max().unwrap_or(0) as u16 + 4).min(area.width);
    let h = (HELP.len() as u16 + 2).min(area.height);
    let r = rect(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(HELP.iter().map(|l| Line::from(*l)).collect::<Vec<_>>())
            .block(v.block("keys".into(), None)),
        r,
    );
}

/// A table's scrolling in area `r` (a border and a header take 3 lines): the cursor kept
/// within the `len` rows, the first row shown so that the cursor is visible, and how many
/// rows fit.
fn scrolled(r: Rect, cursor: usize, len: usize) -> (usize, usize, usize) {
    let visible = r.height.saturating_sub(3) as usize;
    let cursor = cursor.min(len.saturating_sub(1));
    (cursor, (cursor + 1).saturating_sub(visible), visible)
}
