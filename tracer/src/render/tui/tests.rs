//! The view's state and layout, rendered with ratatui's test backend (no terminal).
use ratatui::{
    Terminal,
    backend::TestBackend,
    crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
    layout::Rect,
    style::{Color, Modifier},
};

use super::{
    draw::{plan, plan_for},
    *,
};
use crate::model::{ProcessInfo, Report, ReportKind, Sample, SyscallCounts};

const GETPPID: u32 = 110;
const WRITE: u32 = 1;
const OPENAT: u32 = 257;

fn counts(calls: u64, errors: u64) -> SyscallCounts {
    let mut c = SyscallCounts {
        calls,
        errors,
        timed: calls,
        total_ns: calls * 300,
        max_ns: 900,
        ..Default::default()
    };
    c.hist[tracer_common::hist::bucket(300)] = calls;
    if errors > 0 {
        c.errnos.insert(2, errors); // ENOENT
    }
    c
}

/// An interval report of `secs` seconds from `start_s`: (slot, nr, calls, errors).
fn report(
    targets: &[ProcessInfo],
    start_s: f64,
    secs: f64,
    rows: &[(u32, u32, u64, u64)],
) -> Report {
    let mut s = Sample::default();
    for &(slot, nr, calls, errors) in rows {
        s.syscalls.insert((slot, nr), counts(calls, errors));
    }
    let mut w = crate::model::window(ReportKind::Interval, &s, secs);
    w.start_ns = (start_s * 1e9) as u64;
    w.end_ns = ((start_s + secs) * 1e9) as u64;
    Report::build(&w, &crate::model::ctx(targets))
}

fn one() -> Vec<ProcessInfo> {
    vec![ProcessInfo {
        pid: 7,
        comm: "svc".into(),
    }]
}

fn view_of(reports: &[Report]) -> View {
    let mut v = View::new(1.0, true);
    for r in reports {
        v.add(r);
    }
    v
}

fn key(v: &mut View, code: KeyCode) -> Action {
    v.key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn terminal(v: &View, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw::draw(f, v)).unwrap();
    t
}

/// The screen as lines of text.
fn screen(v: &View, w: u16, h: u16) -> Vec<String> {
    let t = terminal(v, w, h);
    let buf = t.backend().buffer();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect()
}

/// The words of the syscall table's row for `name`.
fn table_row(lines: &[String], name: &str) -> Vec<String> {
    let l = lines
        .iter()
        .find(|l| l.split_whitespace().any(|w| w == name))
        .unwrap_or_else(|| panic!("no row {name}:\n{}", lines.join("\n")));
    let start = l.find(name).unwrap();
    l[start..]
        .split('│')
        .next()
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_wide_terminal_shows_every_pane_with_exact_counts() {
    let t = one();
    let v = view_of(&[
        report(&t, 0.0, 1.0, &[(0, GETPPID, 1000, 0), (0, OPENAT, 30, 10)]),
        report(&t, 1.0, 1.0, &[(0, GETPPID, 2000, 0), (0, WRITE, 5, 0)]),
    ]);
    let lines = screen(&v, 200, 50);
    let all = lines.join("\n");
    for title in [
        "syscalls (3 rows)",
        "scheduling",
        "memory and descriptors",
        "processes and threads",
        "events",
        "q quit",
    ] {
        assert!(all.contains(title), "{title}:\n{all}");
    }
    assert!(
        lines[0].contains("7 (svc)") && lines[0].contains("up 00:00:02"),
        "{}",
        lines[0]
    );
    // Calls since the start, calls/s of the last interval, errors with the top errno.
    let getppid = table_row(&lines, "getppid");
    assert_eq!(
        getppid[..4],
        ["getppid", "3000", "2.0k", "▄█"],
        "{getppid:?}"
    );
    let openat = table_row(&lines, "openat");
    assert_eq!(openat[..4], ["openat", "30", "0.0", "█"], "{openat:?}");
    assert!(openat.contains(&"ENOENT:10".to_string()), "{openat:?}");
    // Ordered by calls/s: getppid, write (5/s), openat (none in the last interval).
    let order: Vec<usize> = ["getppid", "write", "openat"]
        .iter()
        .map(|n| {
            lines
                .iter()
                .position(|l| l.contains(&format!(" {n} ")))
                .unwrap()
        })
        .collect();
    assert!(order.is_sorted(), "{order:?}\n{all}");
}

#[test]
fn sparklines_follow_each_rows_rate() {
    assert_eq!(
        draw::spark([0.0, 1.0, 2.0, 4.0, 8.0].into_iter(), 5),
        " ▁▂▄█"
    );
    assert_eq!(draw::spark([3.0, 3.0].into_iter(), 4), "  ██");
    assert_eq!(draw::spark(std::iter::empty(), 3), "   ");
    // Only the last values that fit.
    assert_eq!(draw::spark((1..21).map(f64::from), 2), "██");
    assert_eq!(draw::bar(0.5, 8), "████░░░░");
    assert_eq!(draw::bar(1.5, 4), "████");
}

#[test]
fn history_is_bounded_and_forgets_rows_gone_quiet() {
    let t = one();
    let mut v = View::new(1.0, true);
    for i in 0..(HISTORY as u64 * 2) {
        // A syscall of its own every interval: each is 0 after its interval.
        v.add(&report(
            &t,
            i as f64,
            1.0,
            &[(0, GETPPID, 10, 0), (0, 120 + i as u32, 1, 0)],
        ));
    }
    let m = &v.live;
    let ring = m.rates.get(&(None, "getppid".to_string())).unwrap();
    assert_eq!(ring.len(), HISTORY);
    assert!(ring.iter().all(|&r| r == 10.0));
    // getppid and each syscall of the last HISTORY intervals, merged and for slot 0.
    assert!(
        m.rates.series() <= 2 * (HISTORY + 1),
        "{}",
        m.rates.series()
    );
    assert_eq!(m.times.len(), HISTORY);
    assert_eq!(
        m.totals[&(None, "getppid".to_string())].calls,
        10 * 2 * HISTORY as u64
    );
}

#[test]
fn narrow_and_short_terminals_drop_panes_without_breaking() {
    let t = one();
    let v = view_of(&[report(&t, 0.0, 1.0, &[(0, GETPPID, 1000, 0)])]);
    for w in [1, 10, 24, 30, 40, 60, 80, 109, 110, 200, 400] {
        for h in [1, 3, 5, 6, 8, 10, 14, 20, 24, 50, 100] {
            let lines = screen(&v, w, h);
            let p = plan_for(&v, Rect::new(0, 0, w, h));
            if p.too_small {
                if w >= 40 {
                    assert!(lines[0].starts_with("tracer: the terminal"), "{w}x{h}");
                }
                continue;
            }
            // Whatever fits is inside the terminal and does not overlap.
            let panes = [
                p.header, p.syscalls, p.sched, p.memory, p.procs, p.events, p.footer,
            ];
            let placed: Vec<Rect> = panes.iter().flatten().copied().collect();
            for (i, a) in placed.iter().enumerate() {
                assert!(a.right() <= w && a.bottom() <= h, "{w}x{h}: {a:?}");
                for b in &placed[i + 1..] {
                    assert!(!a.intersects(*b), "{w}x{h}: {a:?} {b:?}");
                }
            }
            assert!(p.syscalls.is_some(), "{w}x{h}");
            assert!(lines.iter().any(|l| l.contains("getppid")), "{w}x{h}");
        }
    }
    // 80x24: one column; scheduling, memory and processes fit, the event log does not.
    let p = plan_for(&v, Rect::new(0, 0, 80, 24));
    assert!(p.sched.is_some() && p.memory.is_some() && p.procs.is_some());
    assert_eq!(p.events, None);
    // 30 columns: no memory pane; 200x50: all of them.
    assert_eq!(plan_for(&v, Rect::new(0, 0, 30, 40)).memory, None);
    let p = plan_for(&v, Rect::new(0, 0, 200, 50));
    assert!(p.sched.is_some() && p.memory.is_some() && p.procs.is_some() && p.events.is_some());
    // A narrow table keeps the name and counts, and drops latency columns.
    let lines = screen(&v, 40, 20);
    assert_eq!(table_row(&lines, "getppid")[..2], ["getppid", "1000"]);
    assert!(!lines.join("\n").contains("p50"));
    assert!(plan_for(&v, Rect::new(0, 0, 23, 40)).too_small);
    assert!(plan(Rect::new(0, 0, 200, 5), 6).too_small);
}

#[test]
fn sort_keys_reorder_the_syscall_table() {
    let t = one();
    let mut v = view_of(&[report(
        &t,
        0.0,
        1.0,
        &[(0, GETPPID, 500, 0), (0, WRITE, 20, 0), (0, OPENAT, 90, 40)],
    )]);
    let names = |v: &View| v.sys_rows().into_iter().map(|l| l.name).collect::<Vec<_>>();
    assert_eq!(names(&v), ["getppid", "openat", "write"]);
    assert_eq!(key(&mut v, KeyCode::Char('r')), Action::Redraw);
    assert_eq!(names(&v), ["write", "openat", "getppid"]);
    // Calls, then the name (ascending); a new column sorts its natural way.
    key(&mut v, KeyCode::Char('<'));
    assert_eq!(
        v.sys_sort,
        Sort {
            col: SysCol::Calls,
            reverse: false
        }
    );
    assert_eq!(names(&v), ["getppid", "openat", "write"]);
    key(&mut v, KeyCode::Char('<'));
    assert_eq!(names(&v), ["getppid", "openat", "write"]);
    assert_eq!(v.sys_sort.col, SysCol::Name);
    key(&mut v, KeyCode::Char('r'));
    assert_eq!(names(&v), ["write", "openat", "getppid"]);
    // From the first column, left wraps to the last; then errors.
    key(&mut v, KeyCode::Char('<'));
    assert_eq!(v.sys_sort.col, SysCol::Max);
    key(&mut v, KeyCode::Char('>'));
    key(&mut v, KeyCode::Char('>'));
    key(&mut v, KeyCode::Char('>'));
    key(&mut v, KeyCode::Char('>'));
    assert_eq!(v.sys_sort.col, SysCol::Errors);
    assert_eq!(names(&v), ["openat", "getppid", "write"]);
    // The column sorted by is marked on screen.
    assert!(screen(&v, 200, 50).iter().any(|l| l.contains("errors↓")));
}

#[test]
fn selecting_a_process_narrows_the_panes_to_it() {
    let t = vec![
        ProcessInfo {
            pid: 7,
            comm: "front".into(),
        },
        ProcessInfo {
            pid: 9,
            comm: "back".into(),
        },
    ];
    let mut v = view_of(&[report(
        &t,
        0.0,
        1.0,
        &[(0, GETPPID, 500, 0), (1, WRITE, 20, 0), (1, GETPPID, 3, 0)],
    )]);
    v.live.push_log(LogLine {
        pid: Some(7),
        text: "+0.5s exit    process 7 exited".into(),
    });
    v.live.push_log(LogLine {
        pid: Some(9),
        text: "+0.6s signal  SIGTERM to 9".into(),
    });
    let names = |v: &View| {
        v.sys_rows()
            .into_iter()
            .map(|l| (l.name, l.calls))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&v), [("getppid".into(), 503), ("write".into(), 20)]);
    // To the processes pane; by calls/s 7 is first, 9 second.
    key(&mut v, KeyCode::Tab);
    assert_eq!(v.focus, Pane::Procs);
    let rows = v.proc_rows();
    assert_eq!(rows.iter().map(|p| p.pid).collect::<Vec<_>>(), [7, 9]);
    key(&mut v, KeyCode::Down);
    key(&mut v, KeyCode::Enter);
    assert_eq!(v.selected, Some(Selection::Process { pid: 9, slot: 1 }));
    assert_eq!(names(&v), [("write".into(), 20), ("getppid".into(), 3)]);
    let texts: Vec<&str> = v.log_lines().iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["+0.6s signal  SIGTERM to 9"]);
    let all = screen(&v, 200, 50).join("\n");
    assert!(
        all.contains("showing: process 9") && all.contains("syscalls of 9"),
        "{all}"
    );
    assert!(!all.contains("exited"), "{all}");
    // Esc: every target again.
    key(&mut v, KeyCode::Esc);
    assert_eq!(v.selected, None);
    assert_eq!(names(&v)[0], ("getppid".into(), 503));
    // The processes table sorts too: by id, reversed.
    key(&mut v, KeyCode::Char('<'));
    key(&mut v, KeyCode::Char('<'));
    assert_eq!(v.proc_sort.col, ProcCol::Id);
    key(&mut v, KeyCode::Char('r'));
    assert_eq!(
        v.proc_rows().iter().map(|p| p.pid).collect::<Vec<_>>(),
        [9, 7]
    );
}

#[test]
fn pause_freezes_the_view_and_tracing_goes_on() {
    let t = one();
    let mut v = view_of(&[report(&t, 0.0, 1.0, &[(0, GETPPID, 100, 0)])]);
    key(&mut v, KeyCode::Char('p'));
    assert!(v.paused());
    v.add(&report(&t, 1.0, 1.0, &[(0, GETPPID, 50, 0)]));
    assert_eq!(v.sys_rows()[0].calls, 100);
    assert!(screen(&v, 200, 50)[0].contains("PAUSED"));
    key(&mut v, KeyCode::Char(' '));
    assert!(!v.paused());
    assert_eq!(v.sys_rows()[0].calls, 150);
    assert_eq!(key(&mut v, KeyCode::Char('q')), Action::Quit);
    assert_eq!(
        v.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Action::Quit
    );
    assert_eq!(key(&mut v, KeyCode::Char('x')), Action::None);
}

#[test]
fn help_lists_the_keys() {
    let mut v = view_of(&[]);
    key(&mut v, KeyCode::Char('?'));
    let all = screen(&v, 120, 40).join("\n");
    assert!(
        all.contains("keys") && all.contains("pause / resume"),
        "{all}"
    );
    key(&mut v, KeyCode::Esc);
    assert!(!screen(&v, 120, 40).join("\n").contains("pause / resume"));
}

#[test]
fn no_color_means_no_styles() {
    let t = one();
    let r = report(&t, 0.0, 1.0, &[(0, GETPPID, 100, 0), (0, OPENAT, 5, 5)]);
    let styled = |colour: bool| {
        let mut v = View::new(1.0, colour);
        v.add(&r);
        let t = terminal(&v, 200, 50);
        let buf = t.backend().buffer().clone();
        buf.content
            .iter()
            .filter(|c| {
                c.fg != Color::Reset || c.bg != Color::Reset || c.modifier != Modifier::empty()
            })
            .count()
    };
    assert!(styled(true) > 0);
    assert_eq!(styled(false), 0);
}

#[test]
fn names_from_other_processes_are_printable() {
    let t = vec![ProcessInfo {
        pid: 7,
        comm: "\u{1b}[2Jevil".into(),
    }];
    let mut v = view_of(&[report(&t, 0.0, 1.0, &[(0, GETPPID, 1, 0)])]);
    v.say("tracer: a \u{1b}[31mmessage".into());
    let all = screen(&v, 200, 50).join("\n");
    assert!(all.contains("7 (\\33[2Jevil)"), "{all}");
    assert!(all.contains("tracer: a \\33[31mmessage"), "{all}");
    assert!(!all.contains('\u{1b}'));
}

#[test]
fn anomalies_are_logged_once() {
    let t = one();
    let mut r = report(&t, 0.0, 1.0, &[(0, GETPPID, 1, 0)]);
    r.lost_events = 3;
    r.syscalls[0].max_ns = Some(2_500_000_000);
    r.fds = Some(crate::model::memory::FdReport {
        end: 250,
        peak: 250,
        limit: Some(256),
        warning: crate::model::memory::fd_warning(250, 250, Some(256), 0, 0),
        ..Default::default()
    });
    let mut second = r.clone();
    (second.start_mono_ns, second.end_mono_ns) = (1_000_000_000, 2_000_000_000);
    let v = view_of(&[r, second]);
    let texts: Vec<&str> = v.log_lines().iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "+1.000s lost    3 events in the interval",
            "+1.000s stall   a getppid call took 2.50s",
            "+1.000s fds     open descriptors reached 250 of the limit 256 (98%)",
            "+2.000s lost    3 events in the interval",
            "+2.000s stall   a getppid call took 2.50s",
        ]
    );
    assert_eq!(v.live.lost, 6);
}

/// The run's anomalies (model::anomaly) are logged in the window they begin, not again
/// while they last.
#[test]
fn baseline_anomalies_are_logged_when_they_begin() {
    let t = one();
    let mut d = crate::model::anomaly::Detector::default();
    let reports: Vec<Report> = (0..14u64)
        .map(|i| {
            let calls = if i >= 12 { 9000 } else { 1000 };
            let mut r = report(&t, i as f64, 1.0, &[(0, GETPPID, calls, 0)]);
            r.judge(&mut d);
            r
        })
        .collect();
    assert!(
        reports[13].anomalies.iter().any(|a| !a.new),
        "{:?}",
        reports[13].anomalies
    );
    let v = view_of(&reports);
    let texts: Vec<&str> = v
        .log_lines()
        .iter()
        .map(|l| l.text.as_str())
        .filter(|l| l.contains("anomaly"))
        .collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].starts_with("+13.000s anomaly 7 (svc) getppid: 9.0k calls/s, baseline 1.0k"),
        "{texts:?}"
    );
}

/// The lines inside the pane whose title starts with `title`: from its top border to its
/// bottom one, between its side borders.
fn pane(lines: &[String], title: &str) -> Vec<String> {
    let chars: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
    let (top, at) = lines
        .iter()
        .enumerate()
        .find_map(|(y, l)| {
            let i = l.find(&format!("┌ {title}"))?;
            Some((y, l[..i].chars().count()))
        })
        .unwrap_or_else(|| panic!("no pane {title}:\n{}", lines.join("\n")));
    let left = at;
    let right = (at..chars[top].len())
        .find(|&x| chars[top][x] == '┐')
        .unwrap();
    chars[top + 1..]
        .iter()
        .take_while(|l| l[left] != '└')
        .map(|l| {
            l[left + 1..right]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

/// A report of one target (7, svc) with an event loop stalled now, a second loop, a
/// saturated pool, blocked time by cause and a loop-stall event, all of known sizes.
fn loaded_report() -> Report {
    use crate::model::{
        blocked::BlockedBy,
        loops::LoopRow,
        roles::{PoolRow, Role},
        sched::{RunQueue, SchedReport, ThreadRow},
    };
    let t = one();
    let mut r = report(&t, 0.0, 1.0, &[(0, GETPPID, 1000, 0)]);
    const MS: u64 = 1_000_000;
    let blocked_by = BlockedBy {
        waiting_for_work_ns: 450 * MS,
        event_wait_ns: 300 * MS,
        sleep_ns: 150 * MS,
        waiting_on_something_ns: 150 * MS,
        lock_ns: 100 * MS,
        uninterruptible_ns: 50 * MS,
        ..Default::default()
    };
    let thread = |tid: u32, role: Role| ThreadRow {
        tid,
        pid: 7,
        comm: "svc".into(),
        alive: true,
        voluntary_switches: 10,
        involuntary_switches: 0,
        on_cpu_ns: 100 * MS,
        runqueue_ns: 0,
        blocked_ns: 900 * MS,
        blocked_by: BlockedBy {
            waiting_for_work_ns: 900 * MS,
            condition_ns: 900 * MS,
            ..Default::default()
        },
        wall_ns: 1000 * MS,
        runqueue: RunQueue::default(),
        role,
        syscalls: Vec::new(),
        cpu_without_syscalls_ns: 0,
    };
    let sched = SchedReport {
        voluntary_switches: 100,
        involuntary_switches: 10,
        voluntary_per_s: 100.0,
        involuntary_per_s: 10.0,
        on_cpu_ns: 300 * MS,
        off_cpu_ns: 700 * MS,
        blocked_ns: 600 * MS,
        blocked_by: blocked_by.clone(),
        runqueue: RunQueue {
            p99_ns: Some(2 * MS),
            ..Default::default()
        },
        threads: vec![
            thread(7, Role::MainEventLoop),
            thread(8, Role::PoolWorker),
            thread(9, Role::PoolWorker),
        ],
        pools: vec![PoolRow {
            pid: 7,
            tids: vec![8, 9],
            wall_ns: 2000 * MS,
            busy_ns: 1800 * MS,
            utilisation: 0.9,
            saturated: true,
        }],
        threads_dropped: 0,
    };
    r.processes[0].sched = Some(sched.clone());
    r.sched = Some(sched);
    let looping = |tid: u32, comm: &str, p: [u64; 3], stalls: u64, now: Option<u64>| LoopRow {
        slot: 0,
        tid,
        pid: 7,
        comm: comm.into(),
        iterations: 120,
        iterations_per_s: 120.0,
        busy_ns: 0,
        busy_share: 0.0,
        p50_ns: Some(p[0]),
        p99_ns: Some(p[1]),
        max_ns: Some(p[2]),
        stalls,
        stalled_now_ns: now,
        hist: Vec::new(),
    };
    r.loops = vec![
        looping(
            7,
            "svc",
            [1_200_000, 40 * MS, 1500 * MS],
            2,
            Some(2500 * MS),
        ),
        looping(10, "io", [10_000, 100_000, 300_000], 0, None),
    ];
    r.events = vec![ProcessEvent::Stall {
        t_s: 0.25,
        pid: 7,
        tid: 7,
        comm: "svc".into(),
        busy_ns: 1500 * MS,
        on_cpu_ns: 1200 * MS,
        runqueue_ns: 100 * MS,
        blocked_ns: 200 * MS,
        syscalls: 3,
        slowest_syscall: Some("fsync".into()),
        slowest_ns: Some(180 * MS),
    }];
    r
}

#[test]
fn the_scheduling_pane_shows_blocked_causes_loops_and_pools() {
    let v = view_of(&[loaded_report()]);
    let lines = screen(&v, 200, 50);
    let sched = pane(&lines, "scheduling");
    assert_eq!(
        sched[3..],
        [
            "blocked   for work 75% (event waits 50%, sleeps 25%)",
            "          on something 25% (locks 17%, uninterruptible 8%)",
            "run-queue p99 2.00ms  switches 110.0/s (voluntary 100.0/s, involuntary 10.0/s)",
            "loop 7 svc  STALLED now for 2.50s  stalls 2  p50 1.20ms p99 40.00ms max 1.50s",
            "loop 10 io  stalls 0  p50 10.0us p99 100.0us max 300.0us",
            "pool of 2 threads in 7: busy 90.0%, SATURATED",
        ],
        "{}",
        lines.join("\n")
    );
    assert_eq!(
        sched[..3],
        [
            format!("on-CPU    {}  30%  300.00ms", draw::bar(0.3, 30)),
            format!("run queue {}  10%  100.00ms", draw::bar(0.1, 30)),
            format!("blocked   {}  60%  600.00ms", draw::bar(0.6, 30)),
        ]
    );
    // A narrower pane (62 columns inside) leaves out whole fields that do not fit.
    assert_eq!(
        pane(&screen(&v, 160, 50), "scheduling")[5..8],
        [
            "run-queue p99 2.00ms  switches 110.0/s",
            "loop 7 svc  STALLED now for 2.50s  stalls 2",
            "loop 10 io  stalls 0  p50 10.0us p99 100.0us max 300.0us",
        ]
    );
    // Thread roles in the thread rows' state (after the process's own).
    let procs = pane(&lines, "processes and threads");
    let words = |i: usize| procs[i].split_whitespace().collect::<Vec<_>>();
    assert_eq!(words(0)[6..], ["state"], "{procs:?}");
    assert_eq!(words(1)[..2], ["7", "svc"], "{procs:?}");
    assert_eq!(words(1)[6..], ["running"], "{procs:?}");
    assert_eq!(words(2)[..2], ["7", "svc"], "{procs:?}");
    assert_eq!(words(2)[6..], ["main,", "event", "loop"], "{procs:?}");
    assert_eq!(words(3)[..2], ["8", "svc"], "{procs:?}");
    assert_eq!(words(3)[6..], ["pool", "worker"], "{procs:?}");
}

#[test]
fn a_short_scheduling_pane_keeps_a_stall_going_on_and_a_saturated_pool() {
    let v = view_of(&[loaded_report()]);
    // 80x24: one column, the scheduling pane at its least (four lines).
    let lines = screen(&v, 80, 24);
    let sched = pane(&lines, "scheduling");
    assert_eq!(sched.len(), 4, "{}", lines.join("\n"));
    assert_eq!(
        sched[0],
        format!("on-CPU    {}  30%  300.00ms", draw::bar(0.3, 30))
    );
    assert!(sched[1].starts_with("run queue "), "{sched:?}");
    assert_eq!(
        sched[2..],
        [
            "loop 7 svc  STALLED now for 2.50s  stalls 2  p50 1.20ms p99 40.00ms max 1.50s",
            "pool of 2 threads in 7: busy 90.0%, SATURATED",
        ]
    );
    // Taller: every line, the table keeping at least half of what is spare.
    let lines = screen(&v, 80, 60);
    assert_eq!(pane(&lines, "scheduling").len(), 9, "{}", lines.join("\n"));
}

#[test]
fn selecting_a_thread_narrows_the_scheduling_pane_to_it() {
    let mut v = view_of(&[loaded_report()]);
    key(&mut v, KeyCode::Tab);
    // The process 7, then its threads 7, 8, 9 (by id: their calls/s are equal).
    let rows: Vec<(bool, u32)> = v.proc_rows().iter().map(|p| (p.thread, p.id)).collect();
    assert_eq!(rows, [(false, 7), (true, 7), (true, 8), (true, 9)]);
    key(&mut v, KeyCode::Down);
    key(&mut v, KeyCode::Down);
    key(&mut v, KeyCode::Enter);
    assert_eq!(
        v.selected,
        Some(Selection::Thread {
            tid: 8,
            pid: 7,
            slot: 0
        })
    );
    assert_eq!(
        pane(&screen(&v, 200, 50), "scheduling")[3..],
        [
            "blocked   for work 100% (condition waits 100%)",
            "          on something 0%",
            "run-queue p99 -  switches 10.0/s (voluntary 10.0/s, involuntary 0.0/s)",
            "pool of 2 threads in 7: busy 90.0%, SATURATED",
        ]
    );
}

#[test]
fn a_loop_stall_is_logged_with_what_the_thread_did() {
    let v = view_of(&[loaded_report()]);
    let texts: Vec<&str> = v.log_lines().iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "+0.250s stall   event loop of 7 (thread 7 svc) busy 1.50s without waiting: on-CPU 1.20s, waiting for a CPU 100.00ms, blocked 200.00ms; 3 syscalls, slowest fsync 180.00ms"
        ]
    );
    assert_eq!(v.log_lines()[0].pid, Some(7));
    // Longer than the pane is wide: wrapped, not cut.
    assert_eq!(
        pane(&screen(&v, 200, 50), "events")[..2],
        [
            "+0.250s stall   event loop of 7 (thread 7 svc) busy 1.50s without waiting: on-CPU 1.20s, waiting",
            "  for a CPU 100.00ms, blocked 200.00ms; 3 syscalls, slowest fsync 180.00ms",
        ]
    );
    assert_eq!(draw::wrap("abcdefghij", 6), ["abcdef", "  ghij"]);
    assert_eq!(draw::wrap("ab cd efgh", 6), ["ab cd", "  efgh"]);
    assert_eq!(draw::wrap("", 6), [""]);
}

#[test]
fn the_commands_output_is_cut_into_bounded_lines() {
    let mut c = OutputLines::default();
    assert_eq!(c.feed(b"hel"), []);
    assert_eq!(
        c.feed(b"lo\nworld\n\npart"),
        [
            ("hello".to_string(), false),
            ("world".to_string(), false),
            (String::new(), false)
        ]
    );
    assert_eq!(c.end(), Some(("part".to_string(), false)));
    assert_eq!(c.end(), None);
    // A long line keeps its first OUTPUT_LINE_BYTES, whatever the pieces it came in.
    let long = vec![b'x'; OUTPUT_LINE_BYTES + 50];
    assert_eq!(c.feed(&long[..300]), []);
    assert_eq!(
        c.feed(&[&long[300..], &b"\nnext\n"[..]].concat()),
        [
            ("x".repeat(OUTPUT_LINE_BYTES), true),
            ("next".to_string(), false)
        ]
    );
    assert_eq!(c.feed(b"\xff\n"), [("\u{fffd}".to_string(), false)]);
}

#[test]
fn the_commands_output_is_logged_escaped() {
    let mut v = view_of(&[]);
    let who = ProcessInfo {
        pid: 42,
        comm: "sh".into(),
    };
    v.output(&who, 1.5, &("hello-from-cmd".into(), false));
    v.output(&who, 1.75, &("\u{1b}[2Jevil\u{9b}31m\t".into(), true));
    let all = screen(&v, 200, 50);
    assert_eq!(
        pane(&all, "events")[..2],
        [
            "+1.500s output  42 (sh): hello-from-cmd",
            "+1.750s output  42 (sh): \\33[2Jevil\\u{9b}31m\\t [cut]",
        ]
    );
    assert!(!all.join("").contains('\u{1b}'));
    assert_eq!(v.log_lines()[0].pid, Some(42));
    // Paused: the lines still show.
    key(&mut v, KeyCode::Char('p'));
    v.output(&who, 2.0, &("while paused".into(), false));
    assert_eq!(
        v.log_lines().last().unwrap().text,
        "+2.000s output  42 (sh): while paused"
    );
}

/// A report of one target (7, svc) followed into a child (8, kid): both processes under
/// slot 0, the slot's table theirs together, and the per-thread tables (`--threads`) of
/// 7's two threads (7, 70) and 8's one, of known calls.
fn followed_report(start_s: f64) -> Report {
    use crate::model::{
        procs::ProcEntry,
        sched::{SchedReport, ThreadRow, ThreadSyscall},
    };
    let t = one();
    let mut r = report(&t, start_s, 1.0, &[(0, GETPPID, 130, 0), (0, WRITE, 25, 5)]);
    let entry = |pid: u32, comm: &str, calls: u64| ProcEntry {
        pid,
        comm: comm.into(),
        parent: 1,
        joined: None,
        under: "7 (svc)".into(),
        slot: 0,
        calls,
        calls_per_s: calls as f64,
        errors: 0,
        alive: true,
        end: None,
        rss_bytes: None,
        fds: None,
    };
    r.per_process.listed = vec![entry(7, "svc", 120), entry(8, "kid", 35)];
    let sys = |name: &str, calls: u64, errors: u64| ThreadSyscall {
        name: name.into(),
        calls,
        errors,
        total_ns: calls * 100,
        avg_ns: 100,
    };
    let thread = |tid: u32, pid: u32, syscalls: Vec<ThreadSyscall>| ThreadRow {
        tid,
        pid,
        comm: "t".into(),
        alive: true,
        voluntary_switches: 0,
        involuntary_switches: 0,
        on_cpu_ns: 0,
        runqueue_ns: 0,
        blocked_ns: 0,
        blocked_by: Default::default(),
        wall_ns: 1_000_000_000,
        runqueue: Default::default(),
        role: crate::model::roles::Role::Other,
        syscalls,
        cpu_without_syscalls_ns: 0,
    };
    r.sched = Some(SchedReport {
        threads: vec![
            thread(7, 7, vec![sys("getppid", 100, 0)]),
            thread(70, 7, vec![sys("getppid", 10, 0), sys("write", 10, 0)]),
            thread(8, 8, vec![sys("getppid", 20, 0), sys("write", 15, 5)]),
        ],
        ..Default::default()
    });
    r
}

#[test]
fn a_followed_child_is_narrowed_to_its_own_rows() {
    let mut v = view_of(&[followed_report(0.0), followed_report(1.0)]);
    let names = |v: &View| {
        v.sys_rows()
            .into_iter()
            .map(|l| (l.name, l.calls, l.errors))
            .collect::<Vec<_>>()
    };
    // Every target: the slot's table, both processes together.
    assert_eq!(
        names(&v),
        [("getppid".into(), 260, 0), ("write".into(), 50, 10)]
    );
    // Select the child 8 (sorted by calls/s: 7, its threads 7 and 70, then 8).
    key(&mut v, KeyCode::Tab);
    let rows: Vec<(bool, u32)> = v.proc_rows().iter().map(|p| (p.thread, p.id)).collect();
    let at = rows.iter().position(|&r| r == (false, 8)).unwrap();
    for _ in 0..at {
        key(&mut v, KeyCode::Down);
    }
    key(&mut v, KeyCode::Enter);
    assert_eq!(v.selected, Some(Selection::Process { pid: 8, slot: 0 }));
    assert_eq!(
        names(&v),
        [("getppid".into(), 40, 0), ("write".into(), 30, 10)]
    );
    let lines = screen(&v, 200, 50);
    let all = lines.join("\n");
    assert!(
        all.contains("syscalls of 8 (its threads' rows: no latencies)"),
        "{all}"
    );
    assert_eq!(table_row(&lines, "write")[..3], ["write", "30", "15.0"]);
    // The parent: its two threads' rows summed.
    key(&mut v, KeyCode::Esc);
    v.selected = Some(Selection::Process { pid: 7, slot: 0 });
    assert_eq!(
        names(&v),
        [("getppid".into(), 220, 0), ("write".into(), 20, 0)]
    );
    // One thread: its own.
    v.selected = Some(Selection::Thread {
        tid: 70,
        pid: 7,
        slot: 0,
    });
    assert_eq!(
        names(&v),
        [("getppid".into(), 20, 0), ("write".into(), 20, 0)]
    );
    assert!(
        screen(&v, 200, 50)
            .join("\n")
            .contains("syscalls of thread 70")
    );
}

#[test]
fn without_per_thread_rows_a_shared_slot_says_so() {
    let mut r = followed_report(0.0);
    r.sched = None;
    let mut v = view_of(&[r]);
    v.selected = Some(Selection::Process { pid: 8, slot: 0 });
    assert_eq!(v.own_scope(), None);
    assert_eq!(v.sys_rows().iter().map(|l| l.calls).sum::<u64>(), 155);
    let all = screen(&v, 200, 50).join("\n");
    assert!(
        all.contains("its processes together; --threads narrows it"),
        "{all}"
    );
}

#[test]
fn own_rows_are_bounded() {
    let mut v = View::new(1.0, true);
    let mut r = followed_report(0.0);
    let kid = r.sched.as_ref().unwrap().threads[2].clone();
    for i in 0..(OWNERS_KEPT as u32) {
        let mut t = kid.clone();
        t.tid = 100_000 + i;
        r.sched.as_mut().unwrap().threads = vec![t];
        v.add(&r);
    }
    // 8 and each of the threads: past the bound only the last report's owners stay.
    let owners = |v: &View| {
        let mut o: Vec<Owner> = v.live.own_totals.keys().map(|(o, _)| *o).collect();
        o.dedup();
        o.len()
    };
    assert_eq!(owners(&v), 2);
    assert_eq!(
        v.live.own_lines(Owner::Process(8))[0].calls,
        20 * OWNERS_KEPT as u64
    );
}

#[test]
fn a_reused_pid_starts_its_own_rows_afresh() {
    let mut v = view_of(&[followed_report(0.0)]);
    assert_eq!(v.live.own_lines(Owner::Process(8))[0].calls, 20);
    // 8 ended; a new process is forked as 8: the old one's rows are not its.
    let mut r = followed_report(1.0);
    r.events.push(ProcessEvent::Fork {
        t_s: 1.0,
        pid: 7,
        tid: 7,
        child_pid: 8,
        child_tid: 8,
        thread: false,
        followed: true,
    });
    v.add(&r);
    assert_eq!(v.live.own_lines(Owner::Process(8))[0].calls, 20);
    assert_eq!(v.live.own_lines(Owner::Process(7))[0].calls, 220);
}
