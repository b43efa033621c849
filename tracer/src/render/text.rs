//! Text output: a `strace -c`-like table, sorted by total time, with rates, errno names
//! and latency percentiles.
use std::io::Write;

use crate::model::{
    Report, ReportKind, SyscallRow, Totals,
    events::{LifeCounts, ProcessEvent},
    sched::SchedReport,
};

/// Rows shown in live (interval) tables; the final table shows every syscall.
const LIVE_ROWS: usize = 15;
/// Events listed in a live report.
const LIVE_EVENTS: usize = 10;

pub fn write(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    let who = r
        .processes
        .iter()
        .map(|p| format!("{} ({})", p.pid, p.comm))
        .collect::<Vec<_>>()
        .join(", ");
    match r.kind {
        ReportKind::Interval => writeln!(out, "--- {who}: last {:.2} s ---", r.duration_s)?,
        ReportKind::Final => writeln!(out, "=== {who}: summary of {:.2} s ===", r.duration_s)?,
    }
    let limit = if r.kind == ReportKind::Interval {
        LIVE_ROWS
    } else {
        usize::MAX
    };
    table(out, &r.syscalls, &r.totals, limit)?;
    if r.kind == ReportKind::Final && r.processes.len() > 1 {
        for p in &r.processes {
            writeln!(out, "\n--- {} ({}) ---", p.pid, p.comm)?;
            table(out, &p.syscalls, &p.totals, usize::MAX)?;
        }
    }
    if let Some(sched) = &r.sched {
        sched_section(out, sched, r.duration_s)?;
    }
    life_section(out, r)?;
    if r.lost_events > 0 || r.kind == ReportKind::Final {
        writeln!(
            out,
            "lost events: {} (errno map full: {}, thread id out of range: {}, ring buffer full: {}, thread map full: {})",
            r.lost_events,
            r.drops.errno_map_full,
            r.drops.thread_out_of_range,
            r.drops.ring_buffer_full,
            r.drops.thread_stats_full
        )?;
    }
    if let Some(c) = &r.command {
        match (c.exit_code, c.signal) {
            (Some(code), _) => writeln!(out, "command (pid {}) exited with code {code}", c.pid)?,
            (None, Some(sig)) => writeln!(out, "command (pid {}) killed by {sig}", c.pid)?,
            _ => {}
        }
    }
    writeln!(out)
}

fn table(
    out: &mut dyn Write,
    rows: &[SyscallRow],
    t: &Totals,
    limit: usize,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<18} {:>10} {:>9} {:>8} {:<18} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "syscall", "calls", "calls/s", "errors", "errno", "total", "avg", "p50", "p99", "max"
    )?;
    for row in rows.iter().take(limit) {
        writeln!(
            out,
            "{:<18} {:>10} {:>9} {:>8} {:<18} {:>9} {:>8} {:>8} {:>8} {:>8}",
            row.name,
            row.calls,
            rate(row.calls_per_s),
            row.errors,
            errnos(row),
            ns(row.total_ns),
            ns(row.avg_ns),
            ns(row.p50_ns),
            ns(row.p99_ns),
            ns(row.max_ns),
        )?;
    }
    if rows.len() > limit {
        writeln!(out, "({} more syscalls)", rows.len() - limit)?;
    }
    writeln!(
        out,
        "{:<18} {:>10} {:>9} {:>8} {:<18} {:>9}",
        "total",
        t.calls,
        rate(t.calls_per_s),
        t.errors,
        "",
        ns(t.total_ns)
    )
}

fn sched_section(out: &mut dyn Write, s: &SchedReport, secs: f64) -> std::io::Result<()> {
    let runq = s.off_cpu_ns - s.blocked_ns;
    writeln!(
        out,
        "scheduling: on-CPU {}  waiting for a CPU {}  blocked {}  (summed over threads, window {:.2} s)",
        ns(s.on_cpu_ns),
        ns(runq),
        ns(s.blocked_ns),
        secs
    )?;
    writeln!(
        out,
        "  context switches: {} voluntary ({}/s), {} involuntary ({}/s)",
        s.voluntary_switches,
        rate(s.voluntary_per_s),
        s.involuntary_switches,
        rate(s.involuntary_per_s)
    )?;
    let q = &s.runqueue;
    writeln!(
        out,
        "  run-queue latency: {} waits  p50 {}  p99 {}  max {}",
        q.count,
        ns(q.p50_ns),
        ns(q.p99_ns),
        ns(q.max_ns)
    )?;
    if !s.threads.is_empty() {
        writeln!(
            out,
            "  {:>7} {:<16} {:>7} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}",
            "tid",
            "comm",
            "vol",
            "invol",
            "on-cpu",
            "runq",
            "blocked",
            "rq p50",
            "rq p99",
            "rq max"
        )?;
        for t in &s.threads {
            writeln!(
                out,
                "  {:>7} {:<16} {:>7} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}{}",
                t.tid,
                t.comm,
                t.voluntary_switches,
                t.involuntary_switches,
                ns(t.on_cpu_ns),
                ns(t.runqueue_ns),
                ns(t.blocked_ns),
                ns(t.runqueue.p50_ns),
                ns(t.runqueue.p99_ns),
                ns(t.runqueue.max_ns),
                if t.alive { "" } else { "  (ended)" }
            )?;
        }
    }
    Ok(())
}

fn life_section(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    let c: &LifeCounts = &r.life;
    if *c == LifeCounts::default() {
        return Ok(());
    }
    writeln!(
        out,
        "life: {} threads created, {} ended; {} children forked ({} followed); {} exec; {} process exits; {} signals",
        c.threads_created,
        c.threads_ended,
        c.children_forked,
        r.followed_pids.len(),
        c.execs,
        c.process_exits,
        c.signals
    )?;
    let limit = if r.kind == ReportKind::Interval {
        LIVE_EVENTS
    } else {
        usize::MAX
    };
    for e in r.events.iter().take(limit) {
        writeln!(out, "  {}", event_line(e))?;
    }
    let more = r.events.len().saturating_sub(limit) as u64 + r.events_omitted;
    if more > 0 {
        writeln!(out, "  ({more} more events)")?;
    }
    Ok(())
}

fn event_line(e: &ProcessEvent) -> String {
    match e {
        ProcessEvent::Fork {
            t_s,
            pid,
            child_pid,
            child_tid,
            thread,
            followed,
            ..
        } => {
            if *thread {
                format!("+{t_s:.3}s thread  {pid} created thread {child_tid}")
            } else {
                let f = if *followed { ", followed" } else { "" };
                format!("+{t_s:.3}s fork    {pid} forked child {child_pid}{f}")
            }
        }
        ProcessEvent::Exec { t_s, pid, comm, .. } => {
            format!("+{t_s:.3}s exec    {pid} is now {comm}")
        }
        ProcessEvent::Exit {
            t_s,
            pid,
            tid,
            process,
            exit_code,
            signal,
            core_dumped,
        } => {
            let what = if *process {
                format!("process {pid}")
            } else {
                format!("thread {tid} of {pid}")
            };
            let how = match (exit_code, signal) {
                (Some(c), _) => format!("exited with code {c}"),
                (None, Some(s)) => {
                    format!(
                        "killed by {s}{}",
                        if *core_dumped { " (core dumped)" } else { "" }
                    )
                }
                _ => "ended".to_string(),
            };
            format!("+{t_s:.3}s exit    {what} {how}")
        }
        ProcessEvent::Signal {
            t_s,
            pid,
            signal,
            sender_pid,
            result,
            ..
        } => {
            format!("+{t_s:.3}s signal  {signal} to {pid} from {sender_pid} ({result})")
        }
    }
}

/// The two most frequent errnos, e.g. `ENOENT:200 EACCES:3`, and how many more.
fn errnos(row: &SyscallRow) -> String {
    let mut v: Vec<(&String, &u64)> = row.errnos.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut s = v
        .iter()
        .take(2)
        .map(|(e, n)| format!("{e}:{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    if v.len() > 2 {
        s.push_str(&format!(" +{}", v.len() - 2));
    }
    s
}

/// A duration in the unit that keeps it short: 850ns, 12.3us, 4.56ms, 1.23s.
pub fn ns(n: u64) -> String {
    match n {
        0..1_000 => format!("{n}ns"),
        1_000..1_000_000 => format!("{:.1}us", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2}ms", n as f64 / 1e6),
        _ => format!("{:.2}s", n as f64 / 1e9),
    }
}

/// A rate per second: 12.5, 3.4k, 1.20M.
pub fn rate(r: f64) -> String {
    if r < 1e3 {
        format!("{r:.1}")
    } else if r < 1e6 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{:.2}M", r / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProcessInfo, Report, ReportKind, Sample, SyscallCounts};

    #[test]
    fn units() {
        assert_eq!(ns(850), "850ns");
        assert_eq!(ns(12_345), "12.3us");
        assert_eq!(ns(4_560_000), "4.56ms");
        assert_eq!(ns(1_230_000_000), "1.23s");
        assert_eq!(rate(12.5), "12.5");
        assert_eq!(rate(3_400.0), "3.4k");
        assert_eq!(rate(1_200_000.0), "1.20M");
    }

    #[test]
    fn table_has_rows_errnos_and_totals() {
        let mut s = Sample::default();
        let mut c = SyscallCounts {
            calls: 3,
            errors: 3,
            total_ns: 3000,
            ..Default::default()
        };
        c.errnos.insert(2, 2);
        c.errnos.insert(13, 1);
        s.syscalls.insert((0, 257), c);
        let targets = [ProcessInfo {
            pid: 7,
            comm: "cat".into(),
        }];
        let r = Report::build(
            ReportKind::Final,
            &s,
            &[],
            &crate::model::ctx(&targets),
            1.0,
            None,
        );
        let mut buf = Vec::new();
        write(&mut buf, &r).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("7 (cat): summary of 1.00 s"), "{text}");
        let row = text.lines().find(|l| l.starts_with("openat")).unwrap();
        assert!(row.contains("ENOENT:2 EACCES:1"), "{row}");
        let total = text.lines().find(|l| l.starts_with("total")).unwrap();
        assert!(total.split_whitespace().nth(1) == Some("3"), "{total}");
        assert!(text.contains("lost events: 0"));
    }
}
