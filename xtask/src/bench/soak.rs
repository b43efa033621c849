//! `cargo xtask bench --soak MINUTES` (issues 12 and 13): tracer left running with
//! `--follow --interval 1` on a process that churns children and threads (the workload's
//! `soak`), in cycles of 40 s busy and 20 s idle (it then sleeps 0.2 s at a time, forking
//! nothing), at pid_max 4194304 (systemd's default; put back afterwards), serving its
//! metrics with a series per process (`--listen`, `--metrics-pid`), scraped every second
//! as Prometheus would. Reports tracer's RSS over time, its CPU use while its targets are
//! idle (scrapes included), its kernel maps' memory, the scrapes, and whether every call was
//! counted. It reports; it asserts nothing.
use std::{
    ffi::OsString,
    fs,
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    kmem::{self, PidMax, SYSTEMD_PID_MAX},
    proc::{Proc, Watch, check_interrupted},
};

/// One busy-then-idle cycle.
const BUSY: Duration = Duration::from_secs(40);
const IDLE: Duration = Duration::from_secs(20);
/// Idle CPU is measured from this long after the busy phase ends (the round in progress
/// finishes) to the end of the idle phase.
const SETTLE: Duration = Duration::from_secs(3);
/// Each round: children forked (each making `CALLS` getppid), threads started (each
/// making `CALLS` getppid).
const CHILDREN: u64 = 100;
const THREADS: u64 = 50;
const CALLS: u64 = 10;

/// Where the soak's tracer serves its metrics.
const LISTEN: &str = "127.0.0.1:19464";

/// What the scraper saw.
#[derive(Clone, Debug, Default)]
pub struct Scrapes {
    pub ok: u64,
    pub failed: u64,
    /// Samples (lines not starting with `#`) of the last scrape, and the most of any.
    pub last_samples: usize,
    pub max_samples: usize,
    pub max_bytes: usize,
    /// The slowest scrape, in ms.
    pub max_ms: f64,
}

/// One scrape of `/metrics`: the body, or None.
fn scrape() -> Option<String> {
    let mut s = TcpStream::connect(LISTEN).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8(buf).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Scrapes every second until `stop`.
fn scraper(stop: Arc<AtomicBool>, out: Arc<Mutex<Scrapes>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let got = scrape();
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if let Ok(mut s) = out.lock() {
                match got {
                    Some(body) => {
                        let n = body.lines().filter(|l| !l.starts_with('#')).count();
                        s.ok += 1;
                        s.last_samples = n;
                        s.max_samples = s.max_samples.max(n);
                        s.max_bytes = s.max_bytes.max(body.len());
                        s.max_ms = s.max_ms.max(ms);
                    }
                    None => s.failed += 1,
                }
            }
            next += Duration::from_secs(1);
            thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    })
}

/// What one cycle measured.
#[derive(Clone, Debug)]
pub struct Cycle {
    /// Seconds since tracer attached, at the end of the cycle.
    pub at_s: f64,
    pub rss_kib: u64,
    /// tracer's CPU time during the idle phase, as a share of one core.
    pub idle_cpu: f64,
    pub fds: usize,
}

pub struct Soak {
    pub minutes: u32,
    /// With the metrics endpoint scraped every second (else issue 12's plain `--follow
    /// --interval 1`).
    pub scraped: bool,
    pub cycles: Vec<Cycle>,
    /// Kernel memory of tracer's maps (memlock) and its RSS when it had just attached.
    pub maps_kib: u64,
    pub start_rss_kib: u64,
    pub rounds: u64,
    pub getppid_counted: u64,
    pub lost_events: u64,
    /// The final report's `drops`, by cause, those not 0.
    pub drops: Vec<(String, u64)>,
    pub scrapes: Scrapes,
}

impl Soak {
    pub fn getppid_made(&self) -> u64 {
        self.rounds * (CHILDREN + THREADS) * CALLS
    }
}

/// tracer's utime + stime, in clock ticks.
pub(super) fn cpu_ticks(pid: i32) -> Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after its ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> u64 { f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    Ok(field(11) + field(12))
}

pub(super) fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64
}

/// The soak; `scraped`: with `--listen --metrics-pid`, scraped every second.
pub fn run(
    tracer: &Path,
    workload: &Path,
    tmp: &Path,
    minutes: u32,
    scraped: bool,
) -> Result<Soak> {
    let _pid_max = PidMax::set(SYSTEMD_PID_MAX)?;
    let dir = tmp.join("soak");
    fs::create_dir_all(&dir)?;
    let (busy, stop, report) = (
        dir.join("busy"),
        dir.join("stop"),
        dir.join("report.ndjson"),
    );
    let _ = fs::remove_file(&busy);
    let _ = fs::remove_file(&stop);
    let mut argv: Vec<OsString> = vec![
        tracer.into(),
        "--follow".into(),
        "--interval".into(),
        "1".into(),
        "--output".into(),
        "json".into(),
        "-o".into(),
        report.clone().into(),
    ];
    if scraped {
        argv.extend(["--listen".into(), LISTEN.into(), "--metrics-pid".into()]);
    }
    argv.extend([
        "--".into(),
        workload.into(),
        "soak".into(),
        dir.clone().into(),
        CHILDREN.to_string().into(),
        THREADS.to_string().into(),
        CALLS.to_string().into(),
    ]);
    let mut p = Proc::spawn(&argv, Watch::default())?;
    if p.wait_line(
        |l| l.stderr && l.text.contains("tracer: tracing"),
        Duration::from_secs(60),
    )
    .is_none()
    {
        bail!("tracer did not attach: {}", p.stderr_so_far());
    }
    let attached = Instant::now();
    let (maps_kib, start_rss_kib) = kmem::maps_and_rss(p.pid())?;
    let scrapes = Arc::new(Mutex::new(Scrapes::default()));
    let stop_scraping = Arc::new(AtomicBool::new(false));
    let scraping = scraped.then(|| scraper(stop_scraping.clone(), scrapes.clone()));
    let mut cycles = Vec::new();
    let end = attached + Duration::from_secs(60 * u64::from(minutes));
    while Instant::now() < end {
        check_interrupted()?;
        fs::write(&busy, b"")?;
        thread::sleep(BUSY);
        fs::remove_file(&busy)?;
        thread::sleep(SETTLE);
        let t0 = cpu_ticks(p.pid())?;
        let idle_from = Instant::now();
        thread::sleep(IDLE.saturating_sub(SETTLE));
        let ticks = cpu_ticks(p.pid())?.saturating_sub(t0);
        let idle_cpu = ticks as f64 / ticks_per_s() / idle_from.elapsed().as_secs_f64();
        let (_, rss_kib) = kmem::maps_and_rss(p.pid())?;
        let fds = fs::read_dir(format!("/proc/{}/fd", p.pid()))?.count();
        let c = Cycle {
            at_s: attached.elapsed().as_secs_f64(),
            rss_kib,
            idle_cpu,
            fds,
        };
        eprintln!(
            "xtask bench: soak at {:.0} s: rss {} KiB, idle CPU {:.2}% of a core, {} fds",
            c.at_s,
            c.rss_kib,
            100.0 * c.idle_cpu,
            c.fds
        );
        cycles.push(c);
    }
    stop_scraping.store(true, Ordering::Relaxed);
    if let Some(t) = scraping {
        let _ = t.join();
    }
    let scrapes = scrapes.lock().map(|s| s.clone()).unwrap_or_default();
    fs::write(&stop, b"")?;
    // With --listen, tracer keeps serving after its targets end: a signal ends it.
    thread::sleep(Duration::from_secs(2));
    if scraped {
        // SAFETY: signals tracer, which ends its run cleanly at SIGINT.
        unsafe { libc::kill(p.pid(), libc::SIGINT) };
    }
    let done = p.wait(Duration::from_secs(120))?;
    done.ok().context("the soak's tracer")?;
    let rounds = done.stdout().lines().filter(|l| *l == "round").count() as u64;
    let text = fs::read_to_string(&report).context("the soak's report")?;
    let last = text.lines().last().context("an empty soak report")?;
    let fin: serde_json::Value = serde_json::from_str(last).context("the soak's final object")?;
    let getppid_counted = fin["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["name"] == "getppid" && r["abi"] == "x86_64")
        .filter_map(|r| r["calls"].as_u64())
        .sum();
    let _ = fs::remove_dir_all(&dir);
    Ok(Soak {
        minutes,
        scraped,
        cycles,
        maps_kib,
        start_rss_kib,
        rounds,
        getppid_counted,
        lost_events: fin["lost_events"].as_u64().unwrap_or(0),
        drops: fin["drops"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_u64().filter(|&n| n > 0)?)))
            .collect(),
        scrapes,
    })
}

/// The soak's section of the report.
pub fn markdown(s: &Soak) -> String {
    let mut md = String::new();
    let (options, scrapes) = if s.scraped {
        (
            format!(" --listen {LISTEN} --metrics-pid"),
            " Its metrics, a series per process, are scraped every second throughout (idle CPU includes the scrapes).",
        )
    } else {
        (
            String::new(),
            " No metrics endpoint (issue 12's configuration).",
        )
    };
    md.push_str(&format!(
        "## Soak: {} minutes of `--follow --interval 1{options}` at pid_max {SYSTEMD_PID_MAX}\n\n",
        s.minutes
    ));
    md.push_str(&format!(
        "Cycles of {} s busy (rounds of {CHILDREN} children forked and {THREADS} threads started, {CALLS} `getppid` each) and {} s idle; \
         idle CPU is tracer's utime+stime over the last {} s of each idle phase.{scrapes}\n\n",
        BUSY.as_secs(),
        IDLE.as_secs(),
        (IDLE - SETTLE).as_secs()
    ));
    let first_min = s.cycles.iter().find(|c| c.at_s >= 60.0);
    let last = s.cycles.last();
    let max_idle = s.cycles.iter().map(|c| c.idle_cpu).fold(0.0, f64::max);
    md.push_str("| measure | value |\n|---|---|\n");
    md.push_str(&format!(
        "| kernel maps (memlock) | {:.1} MiB |\n",
        s.maps_kib as f64 / 1024.0
    ));
    md.push_str(&format!(
        "| tracer RSS at attach | {:.1} MiB |\n",
        s.start_rss_kib as f64 / 1024.0
    ));
    if let (Some(f), Some(l)) = (first_min, last) {
        md.push_str(&format!(
            "| tracer RSS after the first minute ({:.0} s) | {:.1} MiB |\n",
            f.at_s,
            f.rss_kib as f64 / 1024.0
        ));
        md.push_str(&format!(
            "| tracer RSS at the end ({:.0} s) | {:.1} MiB |\n",
            l.at_s,
            l.rss_kib as f64 / 1024.0
        ));
        md.push_str(&format!(
            "| RSS growth after the first minute | {:+.1} MiB |\n",
            (l.rss_kib as f64 - f.rss_kib as f64) / 1024.0
        ));
        md.push_str(&format!("| descriptors at the end | {} |\n", l.fds));
    }
    if let (Some(f), Some(l)) = (s.cycles.first(), last) {
        md.push_str(&format!(
            "| idle CPU, first / last / highest cycle | {:.2}% / {:.2}% / {:.2}% of a core |\n",
            100.0 * f.idle_cpu,
            100.0 * l.idle_cpu,
            100.0 * max_idle
        ));
    }
    md.push_str(&format!(
        "| `getppid` made / counted | {} / {} ({} rounds) |\n| lost events | {} |\n",
        s.getppid_made(),
        s.getppid_counted,
        s.rounds,
        s.lost_events
    ));
    let c = &s.scrapes;
    if s.scraped {
        md.push_str(&format!(
        "| scrapes of /metrics, ok / failed | {} / {} |\n| samples in a scrape, at the end / most | {} / {} |\n| largest scrape / slowest | {:.1} KiB / {:.1} ms |\n",
        c.ok,
        c.failed,
        c.last_samples,
        c.max_samples,
        c.max_bytes as f64 / 1024.0,
        c.max_ms
    ));
    }
    let drops: Vec<String> = s.drops.iter().map(|(k, n)| format!("{k} {n}")).collect();
    md.push_str(&format!(
        "| drops (final report) | {} |\n\n",
        if drops.is_empty() {
            "none".to_string()
        } else {
            drops.join(", ")
        }
    ));
    md.push_str("| at (s) | RSS (MiB) | idle CPU (% of a core) | fds |\n|---|---|---|---|\n");
    for c in &s.cycles {
        md.push_str(&format!(
            "| {:.0} | {:.1} | {:.2} | {} |\n",
            c.at_s,
            c.rss_kib as f64 / 1024.0,
            100.0 * c.idle_cpu,
            c.fds
        ));
    }
    md
}
