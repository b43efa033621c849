//! `cargo xtask bench --scrape` (issue 13): what serving the metrics costs tracer. tracer
//! runs with `--listen`, `--follow --metrics-pid` and a limit high enough that a workload
//! forking `CHILDREN` children (one after another, each making a few `getppid`) leaves
//! about 10000 series in the exposition (two series per child, beside the service's syscall
//! and latency series). Once the children have ended (their series stay 300 s), phases of
//! `PHASE` s follow in rounds: not scraped, scraped once a second for OpenMetrics text,
//! scraped once a second for protobuf (as Prometheus with native histograms asks). Each
//! phase's CPU is tracer's utime+stime over it; a scrape is one HTTP GET on a new
//! connection, as Prometheus makes it. It reports; it asserts nothing.
use std::{
    ffi::OsString,
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    proc::{Proc, Watch, check_interrupted},
    soak::{cpu_ticks, ticks_per_s},
};

/// Children forked: two series each (`tracer_process_syscalls` and
/// `tracer_process_syscall_errors`), beside the service's about 900.
const CHILDREN: u64 = 4600;
const CALLS: u64 = 10;
/// `--max-series`: each process is counted as two series against the limit.
const MAX_SERIES: u64 = 12_000;
/// One phase; each mode is measured `ROUNDS` times, in turn.
const PHASE: Duration = Duration::from_secs(20);
const ROUNDS: usize = 3;

/// The Accept header Prometheus 2.42 sends with `--enable-feature=native-histograms`, and
/// the one it sends without.
const ACCEPT_PROTOBUF: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const ACCEPT_TEXT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Idle,
    Text,
    Protobuf,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Idle => "not scraped",
            Mode::Text => "scraped, OpenMetrics text",
            Mode::Protobuf => "scraped, protobuf",
        }
    }
}

/// One phase.
#[derive(Clone, Debug)]
pub struct Phase {
    pub mode: Mode,
    /// tracer's CPU over the phase, as a share of one core.
    pub cpu: f64,
    /// Each scrape: body bytes and the time from connect to the last byte.
    pub scrapes: Vec<(usize, Duration)>,
    /// What the answer said it was (Content-Type).
    pub kind: String,
}

pub struct Scrape {
    pub phases: Vec<Phase>,
    /// Samples (lines not comments) of a text exposition before and after the phases.
    pub series_before: usize,
    pub series_after: usize,
    /// Of them, in histogram families (`_bucket`, `_sum`, `_count` lines).
    pub histogram_series: usize,
    pub fill_s: f64,
}

/// One GET of /metrics with `accept`: (Content-Type, body).
fn get(addr: &str, accept: &str) -> Result<(String, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of the response's head")?;
    let head = String::from_utf8_lossy(&all[..end]).to_string();
    if !head.starts_with("HTTP/1.1 200") {
        bail!("scrape answered {}", head.lines().next().unwrap_or(""));
    }
    let kind = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok((kind, all[end + 4..].to_vec()))
}

fn samples(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The value of the first sample whose name and labels start with `prefix`.
fn value(lines: &[String], prefix: &str) -> Option<f64> {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn phase(pid: i32, addr: &str, mode: Mode) -> Result<Phase> {
    let accept = match mode {
        Mode::Idle => None,
        Mode::Text => Some(ACCEPT_TEXT),
        Mode::Protobuf => Some(ACCEPT_PROTOBUF),
    };
    let t0 = cpu_ticks(pid)?;
    let start = Instant::now();
    let mut scrapes = Vec::new();
    let mut kind = String::new();
    let mut next = start;
    while start.elapsed() < PHASE {
        check_interrupted()?;
        if let Some(a) = accept {
            let began = Instant::now();
            let (k, body) = get(addr, a)?;
            scrapes.push((body.len(), began.elapsed()));
            kind = k;
        }
        next += Duration::from_secs(1);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            thread::sleep(d.min(PHASE.saturating_sub(start.elapsed())));
        }
    }
    let ticks = cpu_ticks(pid)?.saturating_sub(t0);
    Ok(Phase {
        mode,
        cpu: ticks as f64 / ticks_per_s() / start.elapsed().as_secs_f64(),
        scrapes,
        kind,
    })
}

pub fn run(tracer: &Path, workload: &Path) -> Result<Scrape> {
    let argv: Vec<OsString> = [
        tracer.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--interval".as_ref(),
        "1".as_ref(),
        "--follow".as_ref(),
        "--metrics-pid".as_ref(),
        "--processes".as_ref(),
        (CHILDREN + 100).to_string().as_ref(),
        "--max-series".as_ref(),
        MAX_SERIES.to_string().as_ref(),
        "--".as_ref(),
        workload.as_os_str(),
        "forks".as_ref(),
        CHILDREN.to_string().as_ref(),
        CALLS.to_string().as_ref(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let mut p = Proc::spawn(&argv, Watch::default())?;
    let said = p
        .wait_line(
            |l| l.stderr && l.text.contains("tracer: metrics on "),
            Duration::from_secs(60),
        )
        .with_context(|| format!("tracer did not serve: {}", p.stderr_so_far()))?;
    let addr = said
        .text
        .split("http://")
        .nth(1)
        .and_then(|u| u.split('/').next())
        .context("no address in tracer's line")?
        .to_string();
    if p.wait_line(
        |l| l.stderr && l.text.contains("tracer: tracing"),
        Duration::from_secs(60),
    )
    .is_none()
    {
        bail!("tracer did not attach: {}", p.stderr_so_far());
    }
    // Until every child and the workload itself have exited, and a report more.
    let started = Instant::now();
    let exited = loop {
        check_interrupted()?;
        let (_, body) = get(&addr, ACCEPT_TEXT)?;
        let lines = samples(&body);
        let n = value(&lines, "tracer_process_exits_total{").unwrap_or(0.0);
        if n >= (CHILDREN + 1) as f64 {
            break value(&lines, "tracer_reports_total").unwrap_or(0.0);
        }
        if started.elapsed() > Duration::from_secs(240) {
            bail!("the children did not end within 240 s ({n} exits)");
        }
        thread::sleep(Duration::from_secs(2));
    };
    let fill_s = started.elapsed().as_secs_f64();
    loop {
        let (_, body) = get(&addr, ACCEPT_TEXT)?;
        if value(&samples(&body), "tracer_reports_total").unwrap_or(0.0) > exited + 1.0 {
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    let (_, body) = get(&addr, ACCEPT_TEXT)?;
    let before = samples(&body);
    let histogram_series = before
        .iter()
        .filter(|l| {
            let name = l.split(['{', ' ']).next().unwrap_or("");
            name.ends_with("_bucket")
                || (name.ends_with("_sum") || name.ends_with("_count")) && name.contains("seconds")
        })
        .count();
    eprintln!(
        "xtask bench: scrape: {} series after {fill_s:.0} s, {histogram_series} of them in histograms; phases of {} s",
        before.len(),
        PHASE.as_secs()
    );
    let mut phases = Vec::new();
    for _ in 0..ROUNDS {
        for mode in [Mode::Idle, Mode::Text, Mode::Protobuf] {
            let ph = phase(p.pid(), &addr, mode)?;
            eprintln!(
                "xtask bench: scrape: {}: tracer {:.2}% of a core",
                mode.label(),
                100.0 * ph.cpu
            );
            phases.push(ph);
        }
    }
    let (_, body) = get(&addr, ACCEPT_TEXT)?;
    let series_after = samples(&body).len();
    p.signal(libc::SIGTERM);
    let done = p.wait(Duration::from_secs(60))?;
    done.ok().context("the scrape benchmark's tracer")?;
    Ok(Scrape {
        phases,
        series_before: before.len(),
        series_after,
        histogram_series,
        fill_s,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The scrape benchmark's section of the report.
pub fn markdown(s: &Scrape) -> String {
    let mut md = String::new();
    md.push_str("## Scrape cost: `--listen` at about 10000 series, scraped once a second\n\n");
    md.push_str(&format!(
        "tracer `--listen --interval 1 --follow --metrics-pid --processes {} --max-series {MAX_SERIES}` on the workload's \
         `forks {CHILDREN} {CALLS}` (children forked one after another, {CALLS} `getppid` each; two `pid` series per child, \
         kept 300 s after its exit). Once they had all ended ({:.0} s), {ROUNDS} rounds of three {} s phases: not scraped, \
         scraped once a second with Prometheus's text Accept header, and with its native-histogram (protobuf) one. \
         CPU is tracer's utime+stime over each phase (clock ticks of {:.0} ms), as a share of one core; a scrape is one \
         GET on a new connection, timed from connect to the last byte.\n\n",
        CHILDREN + 100,
        s.fill_s,
        PHASE.as_secs(),
        1000.0 / ticks_per_s()
    ));
    md.push_str(&format!(
        "Series in the exposition (samples, text): {} before the phases, {} after; {} of them in histogram families.\n\n",
        s.series_before, s.series_after, s.histogram_series
    ));
    md.push_str(
        "| phase | tracer CPU (% of a core), each round | median | bytes per scrape | scrape time (median) | answered as |\n|---|---|---|---|---|---|\n",
    );
    let idle = median(
        s.phases
            .iter()
            .filter(|p| p.mode == Mode::Idle)
            .map(|p| p.cpu)
            .collect(),
    );
    for mode in [Mode::Idle, Mode::Text, Mode::Protobuf] {
        let ps: Vec<&Phase> = s.phases.iter().filter(|p| p.mode == mode).collect();
        let each: Vec<String> = ps.iter().map(|p| format!("{:.2}", 100.0 * p.cpu)).collect();
        let cpu = median(ps.iter().map(|p| p.cpu).collect());
        let scrapes: Vec<&(usize, Duration)> = ps.iter().flat_map(|p| &p.scrapes).collect();
        let (bytes, time, kind) = if scrapes.is_empty() {
            ("".to_string(), "".to_string(), "".to_string())
        } else {
            let b = median(scrapes.iter().map(|(b, _)| *b as f64).collect());
            let t = median(scrapes.iter().map(|(_, t)| t.as_secs_f64() * 1e3).collect());
            (
                format!("{b:.0}"),
                format!("{t:.1} ms ({} scrapes)", scrapes.len()),
                ps.last()
                    .map(|p| format!("`{}`", p.kind))
                    .unwrap_or_default(),
            )
        };
        md.push_str(&format!(
            "| {} | {} | {:.2}{} | {bytes} | {time} | {kind} |\n",
            mode.label(),
            each.join(" / "),
            100.0 * cpu,
            if mode == Mode::Idle {
                String::new()
            } else {
                format!(" (+{:.2} over not scraped)", 100.0 * (cpu - idle))
            },
        ));
    }
    md.push('\n');
    md
}
