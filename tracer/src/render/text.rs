//! Text output: a `strace -c`-like table, sorted by total time, with rates, errno names
//! and latency percentiles.
use std::io::Write;

use super::term::printable;

use crate::model::{
    Abi, ProcessInfo, Report, ReportKind, SyscallRow, Totals,
    anomaly::AnomalyKind,
    blocked::BlockedBy,
    events::{CrashReport, LifeCounts, ProcessEvent},
    loops::LoopRow,
    memory::{FdReport, MIN_FIT_SAMPLES, MemoryReport, OomReport},
    procs::{Joined, ProcEnd, ProcsReport},
    roles::PoolRow,
    sched::{SchedReport, ThreadRow},
};

/// Rows shown in live (interval) tables; the final table shows every syscall.
const LIVE_ROWS: usize = 15;
/// Events listed in a live report.
const LIVE_EVENTS: usize = 10;

pub fn write(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    let who = r
        .processes
        .iter()
        .map(|p| printable(&ProcessInfo::name(p.pid, &p.comm)).into_owned())
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
    if r.totals.timed < r.totals.calls {
        let t = &r.latency_timing;
        writeln!(
            out,
            "latency estimated from {} of {} calls timed (per thread: the first {} per tick and every call that blocks, then 1 in {}; --exact-latency times all)",
            r.totals.timed, r.totals.calls, t.budget_per_tick, t.one_in
        )?;
    }
    if r.kind == ReportKind::Final && r.processes.len() > 1 {
        for p in &r.processes {
            let who = ProcessInfo::name(p.pid, &p.comm);
            writeln!(out, "\n--- {} ---", printable(&who))?;
            table(out, &p.syscalls, &p.totals, usize::MAX)?;
        }
    }
    if let Some(sched) = &r.sched {
        sched_section(out, sched, r.duration_s)?;
    }
    loops_section(out, r)?;
    life_section(out, r)?;
    procs_section(out, &r.per_process)?;
    memory_section(out, r)?;
    anomaly_section(out, r)?;
    if r.lost_events > 0 || r.kind == ReportKind::Final {
        let d = &r.drops;
        let causes: Vec<String> = [
            ("errno map full", d.errno_map_full),
            ("thread table full", d.thread_table_full),
            ("ring buffer full", d.ring_buffer_full),
            ("thread map full", d.thread_stats_full),
            ("memory slot out of range", d.mem_slot_out_of_range),
            ("new task's stack unreadable", d.task_stack_unreadable),
            ("received descriptors unscanned", d.fds_unscanned),
            ("32-bit syscall rows full", d.compat_rows_full),
            ("thread syscall rows full", d.thread_calls_full),
            ("undecodable event records", d.undecodable_events),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{what}: {n}"))
        .collect();
        if causes.is_empty() {
            writeln!(out, "lost events: {}", r.lost_events)?;
        } else {
            writeln!(
                out,
                "lost events: {} ({})",
                r.lost_events,
                causes.join(", ")
            )?;
        }
    }
    if r.drops.skipped_runs > 0 {
        writeln!(
            out,
            "the kernel skipped {} runs of tracer's programs (another run of the same program was preempted on that CPU): counts may be short by up to that many",
            r.drops.skipped_runs
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
    // Idle waits after the work, set apart: their time is waiting for work.
    let (work, idle): (Vec<&SyscallRow>, Vec<&SyscallRow>) =
        rows.iter().partition(|r| !r.idle_wait);
    for (i, row) in work.iter().chain(&idle).take(limit).enumerate() {
        if i == work.len() {
            writeln!(out, "  waiting for work (idle waits):")?;
        }
        writeln!(
            out,
            "{:<18} {:>10} {:>9} {:>8} {:<18} {:>9} {:>8} {:>8} {:>8} {:>8}",
            match row.abi {
                Abi::X86_64 => row.name.clone(),
                // Rows of their own, like strace's "32 bit mode" table.
                Abi::I386 => format!("{} (i386)", row.name),
            },
            row.calls,
            rate(row.calls_per_s),
            row.errors,
            errnos(row),
            opt_ns(row.total_ns),
            opt_ns(row.avg_ns),
            opt_ns(row.p50_ns),
            opt_ns(row.p99_ns),
            max_ns(row.max_ns, row.max_is_bound),
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

/// What an anomaly is, in words: `getppid: 4.0k calls/s, baseline 400.2`.
pub fn anomaly_what(a: &crate::model::anomaly::Anomaly) -> String {
    match a.kind {
        AnomalyKind::Rate => format!("{} calls/s, baseline {}", rate(a.value), rate(a.baseline)),
        AnomalyKind::ErrorRate => {
            format!("{} errors/s, baseline {}", rate(a.value), rate(a.baseline))
        }
        AnomalyKind::P99 => format!(
            "p99 {}, baseline {}",
            ns(a.value as u64),
            ns(a.baseline as u64)
        ),
        AnomalyKind::NewErrno => format!(
            "{} first seen ({} failed)",
            a.errno.as_deref().unwrap_or("?"),
            a.value
        ),
    }
}

/// The figures beyond the run's baseline: in an interval, those of the window (`NEW` when
/// they began in it); in the summary, each of the run's once.
fn anomaly_section(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    if r.anomalies.is_empty() {
        return Ok(());
    }
    if r.kind == ReportKind::Final {
        writeln!(
            out,
            "\nanomalies during the run (against its own baseline):"
        )?;
    }
    for a in &r.anomalies {
        let what = anomaly_what(a);
        let since = humantime::format_rfc3339_seconds(a.started.0);
        let lasted = match a.windows {
            1 => String::new(),
            n => format!(", {n} intervals"),
        };
        let flag = if a.new { "NEW " } else { "" };
        writeln!(
            out,
            "{}anomaly: {} {}: {what} (since {since}{lasted})",
            if r.kind == ReportKind::Final {
                "  "
            } else {
                flag
            },
            printable(&a.target),
            a.syscall
        )?;
    }
    if r.anomalies_omitted > 0 {
        writeln!(out, "  ({} earlier anomalies)", r.anomalies_omitted)?;
    }
    Ok(())
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
    blocked_line(out, &s.blocked_by)?;
    let q = &s.runqueue;
    writeln!(
        out,
        "  run-queue latency: {} waits  p50 {}  p99 {}  max {}",
        q.count,
        opt_ns(q.p50_ns),
        opt_ns(q.p99_ns),
        max_ns(q.max_ns, q.max_is_bound)
    )?;
    if !s.threads.is_empty() {
        writeln!(
            out,
            "  {:>7} {:<16} {:<16} {:>7} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}  blocked mostly in",
            "tid",
            "comm",
            "role",
            "vol",
            "invol",
            "on-cpu",
            "runq",
            "blocked",
            "rq p50",
            "rq p99",
            "rq max",
        )?;
        for t in &s.threads {
            writeln!(
                out,
                "  {:>7} {:<16} {:<16} {:>7} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}  {}{}",
                t.tid,
                printable(&t.comm),
                t.role.name(),
                t.voluntary_switches,
                t.involuntary_switches,
                ns(t.on_cpu_ns),
                ns(t.runqueue_ns),
                ns(t.blocked_ns),
                opt_ns(t.runqueue.p50_ns),
                opt_ns(t.runqueue.p99_ns),
                max_ns(t.runqueue.max_ns, t.runqueue.max_is_bound),
                mostly(&t.blocked_by),
                silent(t.cpu_without_syscalls_ns) + if t.alive { "" } else { "  (ended)" }
            )?;
        }
        thread_syscalls(out, &s.threads)?;
        for p in &s.pools {
            writeln!(out, "  {}", pool_line(p, true))?;
        }
        if s.threads_dropped > 0 {
            writeln!(
                out,
                "  ({} more ended threads, the least busy, not listed; their process totals count them)",
                s.threads_dropped
            )?;
        }
    }
    Ok(())
}

/// A pool's line: its threads, utilisation, and whether it is saturated; `long`: with the
/// threads' ids and what saturated means.
pub fn pool_line(p: &PoolRow, long: bool) -> String {
    let (ids, time, saturated) = if long {
        let ids: Vec<String> = p.tids.iter().map(u32::to_string).collect();
        (
            format!(" (tids {})", ids.join(",")),
            " of their time",
            ": SATURATED, work waits for a free thread",
        )
    } else {
        (String::new(), "", ", SATURATED")
    };
    format!(
        "pool of {} threads in {}{ids}: busy {:.1}%{time}{}",
        p.tids.len(),
        p.pid,
        100.0 * p.utilisation,
        if p.saturated { saturated } else { "" }
    )
}

/// Syscalls made per thread listed in a thread's own table.
const THREAD_ROWS: usize = 10;

/// Each thread's own syscall table (as `perf trace -s`), its busiest calls first.
fn thread_syscalls(out: &mut dyn Write, threads: &[ThreadRow]) -> std::io::Result<()> {
    if threads.iter().all(|t| t.syscalls.is_empty()) {
        return Ok(());
    }
    writeln!(out, "  syscalls by thread:")?;
    for t in threads.iter().filter(|t| !t.syscalls.is_empty()) {
        let role = match t.role.name() {
            "-" => String::new(),
            r => format!(", {r}"),
        };
        writeln!(out, "    {} {}{}", t.tid, printable(&t.comm), role)?;
        for c in t.syscalls.iter().take(THREAD_ROWS) {
            writeln!(
                out,
                "      {:<20} {:>9} calls {:>7} errors {:>10} total {:>10} avg",
                c.name,
                c.calls,
                c.errors,
                ns(c.total_ns),
                ns(c.avg_ns)
            )?;
        }
        if t.syscalls.len() > THREAD_ROWS {
            writeln!(
                out,
                "      ({} more syscalls)",
                t.syscalls.len() - THREAD_ROWS
            )?;
        }
    }
    Ok(())
}

/// Blocked time by cause: waiting for work, then waiting on something, each with its
/// parts; nothing when no thread blocked.
fn blocked_line(out: &mut dyn Write, b: &BlockedBy) -> std::io::Result<()> {
    if b.total_ns() == 0 {
        return Ok(());
    }
    let group = |idle: bool| {
        causes(b, idle)
            .iter()
            .map(|(name, n)| format!("{name} {}", ns(*n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut line = format!("  blocked: waiting for work {}", ns(b.waiting_for_work_ns));
    let idle = group(true);
    if !idle.is_empty() {
        line += &format!(" ({idle})");
    }
    line += &format!("; waiting on something {}", ns(b.waiting_on_something_ns));
    let busy = group(false);
    if !busy.is_empty() {
        line += &format!(" ({busy})");
    }
    if b.unknown_ns > 0 {
        line += &format!("; since before tracing {}", ns(b.unknown_ns));
    }
    writeln!(out, "{line}")
}

/// The causes of one group (`idle`: waiting for work, else waiting on something) that
/// blocked threads for some time, in report order.
pub fn causes(b: &BlockedBy, idle: bool) -> Vec<(&'static str, u64)> {
    b.parts()
        .into_iter()
        .filter(|p| p.2 == idle && p.1 > 0 && p.0 != "since before tracing")
        .map(|p| (p.0, p.1))
        .collect()
}

/// A thread's on-CPU time since its latest syscall, when a second or more.
fn silent(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("  ran {} on a CPU without a syscall", ns(n))
    } else {
        String::new()
    }
}

/// The cause most of a thread's blocked time went to, with its share ("-" if none).
fn mostly(b: &BlockedBy) -> String {
    let total = b.total_ns();
    match b.parts().into_iter().max_by_key(|p| p.1) {
        Some((name, n, _)) if n > 0 && total > 0 => {
            format!("{name} {:.0}%", 100.0 * n as f64 / total as f64)
        }
        _ => "-".into(),
    }
}

/// The event-loop threads: each iteration's busy time (return of a wait to the next wait),
/// its stalls, and a stall still going on.
fn loops_section(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    if r.loops.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "event loops: busy time of each iteration (from a wait's return to the next wait)"
    )?;
    writeln!(
        out,
        "  {:>7} {:<16} {:>10} {:>8} {:>6} {:>9} {:>9} {:>9} {:>7}",
        "tid", "comm", "iterations", "iter/s", "busy", "p50", "p99", "max", "stalls"
    )?;
    for l in &r.loops {
        writeln!(
            out,
            "  {:>7} {:<16} {:>10} {:>8} {:>5.1}% {:>9} {:>9} {:>9} {:>7}{}",
            l.tid,
            printable(&l.comm),
            l.iterations,
            rate(l.iterations_per_s),
            100.0 * l.busy_share,
            opt_ns(l.p50_ns),
            opt_ns(l.p99_ns),
            opt_ns(l.max_ns),
            l.stalls,
            stalled_now(l).map_or(String::new(), |s| format!("  {s}"))
        )?;
    }
    if r.loops_omitted > 0 {
        writeln!(out, "  ({} more loop threads)", r.loops_omitted)?;
    }
    Ok(())
}

/// A loop's iteration still open past `--stall`: `STALLED now for 2.50s`.
pub fn stalled_now(l: &LoopRow) -> Option<String> {
    l.stalled_now_ns
        .map(|n| format!("STALLED now for {}", ns(n)))
}

fn life_section(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    let c: &LifeCounts = &r.life;
    if *c == LifeCounts::default() {
        return Ok(());
    }
    writeln!(
        out,
        "life: {} threads created, {} ended; {} children forked ({} followed); {} exec; {} process exits; {} signals{}{}",
        c.threads_created,
        c.threads_ended,
        c.children_forked,
        r.followed_pids.len(),
        c.execs,
        c.process_exits,
        c.signals,
        if c.crashes > 0 {
            format!(" ({} crashes)", c.crashes)
        } else {
            String::new()
        },
        if c.taken_in > 0 {
            format!("; {} taken in by selectors", c.taken_in)
        } else {
            String::new()
        }
    )?;
    if c.stalls > 0 {
        writeln!(out, "  {} event-loop stalls", c.stalls)?;
    }
    if r.drops.life_events_missed > 0 {
        writeln!(
            out,
            "  (up to {} life events unseen: the kernel skipped both of tracer's programs on their hook)",
            r.drops.life_events_missed
        )?;
    }
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
    for c in r.crashes.iter().take(limit) {
        writeln!(out, "{}", crash_line(c))?;
    }
    let more = r.crashes.len().saturating_sub(limit) as u64 + r.crashes_omitted;
    if more > 0 {
        writeln!(out, "  ({more} more crashes)")?;
    }
    Ok(())
}

/// `crashed +1.234s: process 7, thread 8 (worker): SIGSEGV SEGV_MAPERR at 0x10, ip
/// 0x55d0c0de1234; fatal (core dumped)`.
pub fn crash_line(c: &CrashReport) -> String {
    let mut what = format!("{} {}", c.signal, c.code_name);
    if let Some(a) = &c.addr {
        what += &format!(" at {a}");
    }
    if let Some(ip) = &c.ip {
        what += &format!(", ip {ip}");
    }
    match c.sender_pid {
        Some(p) if p == c.pid => what += ", sent by the process itself",
        Some(p) => what += &format!(", sent by process {p}"),
        None => {}
    }
    let fate = match c.fatal {
        Some(true) if c.core_dumped => "; fatal (core dumped)",
        Some(true) => "; fatal",
        Some(false) => "; not fatal",
        None => "",
    };
    format!(
        "  crashed +{:.3}s: process {}, thread {} ({}): {what}{fate}",
        c.t_s,
        c.pid,
        c.tid,
        printable(&c.thread)
    )
}

/// Each traced process on its own, when a target counts several (followed children,
/// matched processes): the busiest in full, the rest summed.
fn procs_section(out: &mut dyn Write, p: &ProcsReport) -> std::io::Result<()> {
    if !p.several {
        return Ok(());
    }
    writeln!(
        out,
        "processes: {} traced, {} listed by calls",
        p.traced,
        p.listed.len()
    )?;
    writeln!(
        out,
        "  {:>8} {:>8} {:<9} {:>10} {:>8} {:>10} {:>6}  {:<12} name",
        "pid", "parent", "joined", "calls", "errors", "rss", "fds", "state"
    )?;
    for e in &p.listed {
        let joined = match e.joined {
            Some(Joined::Attached) => "attached",
            Some(Joined::Launched) => "launched",
            Some(Joined::Followed) => "followed",
            Some(Joined::Matched) => "matched",
            None => "-",
        };
        let state = match &e.end {
            None => "running".to_string(),
            Some(ProcEnd {
                exit_code: Some(c), ..
            }) => format!("exited {c}"),
            Some(ProcEnd {
                signal: Some(s), ..
            }) => format!("killed {s}"),
            Some(_) => "ended".to_string(),
        };
        writeln!(
            out,
            "  {:>8} {:>8} {:<9} {:>10} {:>8} {:>10} {:>6}  {:<12} {}",
            e.pid,
            e.parent,
            joined,
            e.calls,
            e.errors,
            e.rss_bytes.map_or("-".to_string(), bytes),
            e.fds.map_or("-".to_string(), |n| n.to_string()),
            state,
            printable(&e.comm),
        )?;
    }
    if p.other.processes > 0 {
        writeln!(
            out,
            "  other: {} processes, {} calls, {} errors",
            p.other.processes, p.other.calls, p.other.errors
        )?;
    }
    Ok(())
}

pub fn event_line(e: &ProcessEvent) -> String {
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
            format!("+{t_s:.3}s exec    {pid} is now {}", printable(comm))
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
            let from = sender_pid.map_or("the kernel".to_string(), |p| p.to_string());
            format!("+{t_s:.3}s signal  {signal} to {pid} from {from} ({result})")
        }
        ProcessEvent::OomKill {
            t_s,
            pid,
            comm,
            traced,
            ..
        } => {
            let who = if *traced { "TRACED process" } else { "process" };
            format!(
                "+{t_s:.3}s oom     the OOM killer killed {who} {pid} ({})",
                printable(comm)
            )
        }
        ProcessEvent::Taken {
            t_s,
            pid,
            by,
            cause,
            ..
        } => {
            let why = match *cause {
                "name" => "its name matched",
                "exec" => "it exec'd the program",
                "cgroup" => "it moved into the cgroup",
                _ => "it matched",
            };
            format!("+{t_s:.3}s taken   {pid} taken in by --{by}: {why}")
        }
        ProcessEvent::Stall {
            t_s,
            pid,
            tid,
            comm,
            busy_ns,
            on_cpu_ns,
            runqueue_ns,
            blocked_ns,
            syscalls,
            slowest_syscall,
            slowest_ns,
        } => {
            let slowest = match (slowest_syscall, slowest_ns) {
                (Some(name), Some(n)) => format!(", slowest {name} {}", ns(*n)),
                _ => String::new(),
            };
            format!(
                "+{t_s:.3}s stall   event loop of {pid} (thread {tid} {}) busy {} without waiting: on-CPU {}, waiting for a CPU {}, blocked {}; {syscalls} syscalls{slowest}",
                printable(comm),
                ns(*busy_ns),
                ns(*on_cpu_ns),
                ns(*runqueue_ns),
                ns(*blocked_ns),
            )
        }
    }
}

/// The memory, descriptor and OOM-kill lines (when the memory section is selected).
pub fn memory_section(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    for k in r.oom_kills.iter().flatten() {
        oom_line(out, k)?;
    }
    let per_process = r.kind == ReportKind::Final && r.processes.len() > 1;
    if let Some(m) = &r.memory {
        let who = if per_process { "all traced" } else { "" };
        memory_lines(out, who, m)?;
    }
    if let Some(f) = &r.fds {
        fd_lines(out, if per_process { "all traced" } else { "" }, f)?;
    }
    if per_process {
        for p in &r.processes {
            let who = printable(&ProcessInfo::name(p.pid, &p.comm)).into_owned();
            if let Some(m) = &p.memory {
                memory_lines(out, &who, m)?;
            }
            if let Some(f) = &p.fds {
                fd_lines(out, &who, f)?;
            }
        }
    }
    for p in &r.processes {
        if let Some(a) = &p.anatomy {
            let who = printable(&ProcessInfo::name(p.pid, &p.comm)).into_owned();
            super::anatomy::lines(out, &who, a)?;
        }
        for m in &p.members {
            let who = format!("{} of {}", m.pid, printable(&p.comm));
            super::anatomy::lines(out, &who, &m.anatomy)?;
        }
    }
    Ok(())
}

fn oom_line(out: &mut dyn Write, k: &OomReport) -> std::io::Result<()> {
    let what = format!(
        "pid {} ({}) at {:.2} s: rss anon {}, file {}, shmem {}; memory cgroup {}",
        k.pid,
        printable(&k.comm),
        k.t_s,
        bytes(k.anon_rss_bytes),
        bytes(k.file_rss_bytes),
        bytes(k.shmem_rss_bytes),
        printable(&k.cgroup)
    );
    if k.traced {
        writeln!(out, "!!! OOM KILL OF A TRACED PROCESS: {what} !!!")
    } else {
        writeln!(out, "oom kill (not traced): {what}")
    }
}

fn memory_lines(out: &mut dyn Write, who: &str, m: &MemoryReport) -> std::io::Result<()> {
    let sep = if who.is_empty() { "" } else { " " };
    let rss = &m.rss;
    writeln!(
        out,
        "memory{sep}{who}: rss {} (anon {}, file {}, shmem {}, swap {}); start {}, peak {}, trend {}",
        bytes(rss.end_bytes),
        bytes(rss.end.anon_bytes),
        bytes(rss.end.file_bytes),
        bytes(rss.end.shmem_bytes),
        bytes(rss.end.swap_bytes),
        bytes(rss.start_bytes),
        bytes(rss.peak_bytes),
        if rss.growth_samples >= MIN_FIT_SAMPLES {
            format!("{}/s", signed_bytes(rss.growth_bytes_per_s as i64))
        } else {
            "n/a (too few samples)".to_string()
        },
    )?;
    writeln!(
        out,
        "  heap (brk) {}: {:#x} -> {:#x}",
        signed_bytes(m.brk_growth_bytes),
        m.brk_start,
        m.brk_end
    )?;
    writeln!(
        out,
        "  mmap: anon {}, file {}, mremap grown {}; unmapped {}; net {}",
        bytes(m.mmap.anon_mapped_bytes),
        bytes(m.mmap.file_mapped_bytes),
        bytes(m.mmap.remap_grown_bytes),
        bytes(m.mmap.unmapped_bytes),
        signed_bytes(m.mmap.net_bytes)
    )?;
    writeln!(
        out,
        "  virtual {} (data {}); page faults: minor {}, major {}",
        bytes(m.vm_size_bytes),
        bytes(m.vm_data_bytes),
        m.page_faults.minor,
        m.page_faults.major
    )?;
    let l = &m.limits;
    let limit = |v: Option<u64>| v.map_or("unlimited".to_string(), bytes);
    let cg = l
        .cgroup
        .as_ref()
        .map_or("memory cgroup unknown".to_string(), |c| {
            format!(
                "cgroup {} {} of {}",
                printable(&c.path),
                bytes(c.usage_bytes),
                limit(c.limit_bytes)
            )
        });
    writeln!(
        out,
        "  limits: {cg}; RLIMIT_AS {}; RLIMIT_DATA {}",
        limit(l.rlimit_as_bytes),
        limit(l.rlimit_data_bytes)
    )?;
    if let Some(e) = &l.eta {
        writeln!(
            out,
            "  at {}/s, the {} limit ({}) is reached in {}",
            bytes(e.rate_bytes_per_s as u64),
            e.limit,
            bytes(e.limit_bytes),
            secs(e.eta_s)
        )?;
    }
    Ok(())
}

fn fd_lines(out: &mut dyn Write, who: &str, f: &FdReport) -> std::io::Result<()> {
    let sep = if who.is_empty() { "" } else { " " };
    let proc_now = f
        .proc_now
        .map_or(String::new(), |n| format!(" (/proc now: {n})"));
    writeln!(
        out,
        "fds{sep}{who}: {} open{proc_now}; start {}, peak {}, opened {}, closed {}; limit {}; EMFILE {}, ENFILE {}",
        f.end,
        f.start,
        f.peak,
        f.opened,
        f.closed,
        f.limit.map_or("unlimited".to_string(), |l| l.to_string()),
        f.emfile_errors,
        f.enfile_errors
    )?;
    if let (Some(e), Some(l)) = (f.eta_s, f.limit) {
        writeln!(
            out,
            "  descriptors growing {:.1}/s: the limit ({l}) is reached in {}",
            f.growth_per_s,
            secs(e)
        )?;
    }
    if let Some(t) = f.first_emfile_s {
        writeln!(out, "  first EMFILE by {t:.2} s after tracing started")?;
    }
    if let Some(w) = &f.warning {
        writeln!(out, "WARNING: {w}")?;
    }
    Ok(())
}

/// Bytes in binary units: 512 B, 12.0 KiB, 3.5 MiB, 1.25 GiB.
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if f < K {
        format!("{n} B")
    } else if f < K * K {
        format!("{:.1} KiB", f / K)
    } else if f < K * K * K {
        format!("{:.1} MiB", f / (K * K))
    } else {
        format!("{:.2} GiB", f / (K * K * K))
    }
}

pub fn signed_bytes(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", bytes(n.unsigned_abs()))
}

/// A duration for people: 45 s, 12 min, 3.5 h, 2.0 days.
pub fn secs(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86400.0)
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

/// A latency that may be unknown (no call timed): `-`.
pub fn opt_ns(n: Option<u64>) -> String {
    n.map_or("-".to_string(), ns)
}

/// A maximum, marked `≤` when it is a histogram bucket's upper bound rather than a
/// measurement.
pub fn max_ns(n: Option<u64>, bound: bool) -> String {
    match n {
        Some(n) if bound => format!("≤{}", ns(n)),
        n => opt_ns(n),
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
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(signed_bytes(-(3 << 10)), "-3.0 KiB");
        assert_eq!(secs(90.0), "90 s");
        assert_eq!(secs(3600.0), "60 min");
    }

    /// An event loop's waits top a table sorted by time; they come after the work, set
    /// apart, and still count in the totals.
    #[test]
    fn idle_waits_come_after_the_work() {
        let mut s = Sample::default();
        for (nr, ns) in [
            (232u32, 9_000_000u64),
            (1, 1000),
            (35, 5_000_000),
            (202, 2_000_000),
        ] {
            let mut c = SyscallCounts {
                calls: 10,
                timed: 10,
                total_ns: 10 * ns,
                ..Default::default()
            };
            c.hist[tracer_common::hist::bucket(ns)] = 10;
            s.syscalls.insert((0, nr), c);
        }
        let targets = [ProcessInfo {
            pid: 7,
            comm: "node".into(),
        }];
        let r = Report::build(
            &crate::model::window(ReportKind::Final, &s, 1.0),
            &crate::model::ctx(&targets),
        );
        // JSON keeps the order by time, and says which are idle waits.
        let names: Vec<(&str, bool)> = r
            .syscalls
            .iter()
            .map(|r| (r.name.as_str(), r.idle_wait))
            .collect();
        assert_eq!(
            names,
            [
                ("epoll_wait", true),
                ("nanosleep", true),
                ("futex", false),
                ("write", false)
            ]
        );
        let mut buf = Vec::new();
        write(&mut buf, &r).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let first: Vec<&str> = text
            .lines()
            .skip(2)
            .take(5)
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect();
        assert_eq!(
            first,
            ["futex", "write", "waiting", "epoll_wait", "nanosleep"],
            "{text}"
        );
        let total = text.lines().find(|l| l.starts_with("total")).unwrap();
        assert_eq!(total.split_whitespace().nth(1), Some("40"), "{total}");
    }

    #[test]
    fn table_has_rows_errnos_and_totals() {
        let mut s = Sample::default();
        let mut c = SyscallCounts {
            calls: 3,
            errors: 3,
            timed: 3,
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
            &crate::model::window(ReportKind::Final, &s, 1.0),
            &crate::model::ctx(&targets),
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
        assert!(
            !text.contains("memory"),
            "no memory section unless selected"
        );
        assert!(!text.contains("estimated"), "every call was timed: {text}");
        assert!(!text.contains("skipped"), "{text}");

        // Runs the kernel skipped are said, and are not lost events.
        s.drops.skipped_runs = 12;
        let r = Report::build(
            &crate::model::window(ReportKind::Final, &s, 1.0),
            &crate::model::ctx(&targets),
        );
        assert_eq!(r.lost_events, 0);
        let mut buf = Vec::new();
        write(&mut buf, &r).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("the kernel skipped 12 runs of tracer's programs"),
            "{text}"
        );
    }

    #[test]
    fn sampled_latency_is_said_under_the_table() {
        let mut s = Sample::default();
        s.syscalls.insert(
            (0, 0),
            SyscallCounts {
                calls: 1000,
                timed: 90,
                total_ns: 100_000,
                ..Default::default()
            },
        );
        let targets = [ProcessInfo {
            pid: 7,
            comm: "dd".into(),
        }];
        let mut ctx = crate::model::ctx(&targets);
        ctx.timing = tracer_common::SyscallTiming::SAMPLED;
        let r = Report::build(&crate::model::window(ReportKind::Final, &s, 1.0), &ctx);
        let mut buf = Vec::new();
        write(&mut buf, &r).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let note = text.lines().find(|l| l.starts_with("latency")).unwrap();
        assert!(
            note.contains("90 of 1000 calls timed")
                && note.contains("32 per tick")
                && note.contains("1 in 16"),
            "{note}"
        );
    }

    #[test]
    fn memory_section_shows_oom_kills_loudly_and_fd_warnings() {
        use crate::model::memory::{FdReport, MemoryReport, OomReport};
        let targets = [ProcessInfo {
            pid: 7,
            comm: "svc".into(),
        }];
        let mut r = Report::build(
            &crate::model::window(ReportKind::Final, &Sample::default(), 1.0),
            &crate::model::ctx(&targets),
        );
        let mut m = MemoryReport {
            brk_growth_bytes: 64 << 20,
            ..Default::default()
        };
        m.rss.end_bytes = 3 << 20;
        r.memory = Some(m);
        r.fds = Some(FdReport {
            start: 3,
            end: 256,
            limit: Some(256),
            emfile_errors: 247,
            warning: crate::model::memory::fd_warning(256, 256, Some(256), 0, 0),
            ..Default::default()
        });
        let kill = |pid, traced| OomReport {
            t_s: 1.5,
            pid,
            comm: "hog".into(),
            anon_rss_bytes: 63 << 20,
            file_rss_bytes: 0,
            shmem_rss_bytes: 0,
            swap_bytes: 0,
            total_vm_bytes: 0,
            cgroup: "/t".into(),
            traced,
        };
        r.oom_kills = Some(vec![kill(7, true), kill(9, false)]);
        let mut buf = Vec::new();
        write(&mut buf, &r).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("!!! OOM KILL OF A TRACED PROCESS: pid 7 (hog)"),
            "{text}"
        );
        assert!(
            text.contains("oom kill (not traced): pid 9 (hog)"),
            "{text}"
        );
        assert!(text.contains("anon 63.0 MiB"), "{text}");
        assert!(text.contains("heap (brk) +64.0 MiB"), "{text}");
        assert!(text.contains("fds: 256 open"), "{text}");
        assert!(text.contains("EMFILE 247"), "{text}");
        assert!(
            text.contains("WARNING: open descriptors reached 256"),
            "{text}"
        );
    }
}
