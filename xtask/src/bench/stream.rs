//! `cargo xtask bench --stream` (issue 14): what strace mode costs on W1 (`dd bs=1`),
//! beside aggregate mode, `strace -f` and `perf trace`, each writing every call it shows.
//! Rounds of every configuration in turn (the order rotated each round, one warm-up round
//! discarded); each run's figure is dd's own elapsed time. Selective modes are judged
//! against the aggregate run of the same round (the 5%); full streams against the
//! floor (empty programs on the same hooks), with the calls made, written and lost. The
//! streams go to files in /dev/shm (a file on tmpfs: no disk, and their lines can be
//! counted). It reports; it asserts nothing.
use std::{
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

use super::{
    RUN_TIMEOUT,
    proc::{Proc, Watch, check_interrupted},
    report::median,
    tools,
};

/// dd's count: 2 calls a byte (read, write).
const DD_COUNT: u64 = 1_000_000;
/// strace and perf trace run 1/div of the count, their time multiplied back.
const STRACE_DIV: u64 = 20;
const PERF_DIV: u64 = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Baseline,
    Floor,
    Aggregate,
    TraceOpenat,
    Failed,
    TraceAll,
    Strace,
    PerfTrace,
}

impl Mode {
    const ALL: [Mode; 8] = [
        Mode::Baseline,
        Mode::Floor,
        Mode::Aggregate,
        Mode::TraceOpenat,
        Mode::Failed,
        Mode::TraceAll,
        Mode::Strace,
        Mode::PerfTrace,
    ];

    fn label(self) -> &'static str {
        match self {
            Mode::Baseline => "dd alone",
            Mode::Floor => "floor (empty programs, same hooks)",
            Mode::Aggregate => "tracer (aggregate mode, all sections)",
            Mode::TraceOpenat => "tracer --trace=openat",
            Mode::Failed => "tracer --failed",
            Mode::TraceAll => "tracer --trace (every call, to a file)",
            Mode::Strace => "strace -f -o FILE (every call)",
            Mode::PerfTrace => "perf trace -o FILE (every call)",
        }
    }

    fn div(self) -> u64 {
        match self {
            Mode::Strace => STRACE_DIV,
            Mode::PerfTrace => PERF_DIV,
            _ => 1,
        }
    }

    /// Selective modes are compared with aggregate mode; full streams with the floor.
    fn selective(self) -> bool {
        matches!(self, Mode::TraceOpenat | Mode::Failed)
    }

    fn streams_all(self) -> bool {
        matches!(self, Mode::TraceAll | Mode::Strace | Mode::PerfTrace)
    }
}

/// One run.
struct Run {
    /// dd's time, multiplied back to the full count.
    secs: f64,
    /// Calls dd made in this run (from aggregate mode's exact count; scaled runs by the
    /// linear model 2·count + startup), and what the tool wrote and said it lost.
    made: Option<u64>,
    written: Option<u64>,
    lost: Option<u64>,
}

pub struct Stream {
    rounds: usize,
    rows: Vec<(Mode, Vec<Option<Run>>)>,
    failures: Vec<String>,
    /// dd's calls outside its loop (exec, ld.so, locale, exit), from aggregate mode.
    startup_calls: Option<u64>,
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

fn dd(dd: &Path, n: u64) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![dd.into()];
    v.extend(os(&["if=/dev/zero", "of=/dev/null", "bs=1"]));
    v.push(format!("count={n}").into());
    v
}

fn argv(mode: Mode, tracer: &Path, dd_path: &Path, out: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = Vec::new();
    let json = |v: &mut Vec<OsString>| {
        v.push(tracer.into());
        v.extend(os(&["--output", "json", "-o"]));
        v.push(out.into());
    };
    match mode {
        Mode::Baseline => {}
        Mode::Floor => {
            v.push(tracer.into());
            v.extend(os(&["--bench-floor", "--"]));
        }
        Mode::Aggregate => {
            json(&mut v);
            v.push("--".into());
        }
        Mode::TraceOpenat => {
            json(&mut v);
            v.extend(os(&["--trace=openat", "--"]));
        }
        Mode::Failed => {
            json(&mut v);
            v.extend(os(&["--failed", "--"]));
        }
        Mode::TraceAll => {
            // Text lines, as a person reads them; the summary line ends the file.
            v.push(tracer.into());
            v.extend(os(&["--sections", "syscalls", "-o"]));
            v.push(out.into());
            v.extend(os(&["--trace", "--"]));
        }
        Mode::Strace => {
            v.extend(os(&["strace", "-f", "-o"]));
            v.push(out.into());
        }
        Mode::PerfTrace => {
            v.extend(os(&["perf", "trace", "-o"]));
            v.push(out.into());
            v.push("--".into());
        }
    }
    v.extend(dd(dd_path, DD_COUNT / mode.div()));
    v
}

/// Lines of a full stream that show a call, and the calls the tool said it lost.
fn stream_counts(mode: Mode, text: &str) -> Result<(u64, u64)> {
    match mode {
        Mode::TraceAll => {
            let line = text
                .lines()
                .rev()
                .find(|l| l.starts_with("tracer: ") && l.contains(" calls streamed, "))
                .context("tracer wrote no stream summary")?;
            let num = |after: &str| -> Option<u64> {
                let rest = line.split(after).next()?;
                rest.rsplit(' ').next()?.parse().ok()
            };
            let streamed = num(" calls streamed").context("unreadable stream summary")?;
            let lost = num(" lost (").context("unreadable stream summary")?;
            Ok((streamed, lost))
        }
        // "1234  read(0, "\0", 1)          = 1" (the result padded to a column);
        // exit_group's "= ?" is a call too, "<unfinished ...>" halves are not.
        Mode::Strace => {
            let calls = text.lines().filter(|l| {
                let t: Vec<&str> = l.split_whitespace().collect();
                t.join(" ").contains(") = ")
            });
            Ok((calls.count() as u64, 0))
        }
        // "     0.004 ( 0.001 ms): dd/4242 read(fd: 0, buf: 0x55..., count: 1) = 1",
        // "LOST 1234 events!" where its ring lost some.
        Mode::PerfTrace => {
            let mut written = 0;
            let mut lost = 0;
            for l in text.lines() {
                if let Some(n) = l.trim().strip_prefix("LOST ") {
                    lost += n
                        .split_whitespace()
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(0);
                } else if l.contains("): ") {
                    // The result is padded to a column: ")      = 1".
                    let l: Vec<&str> = l.split_whitespace().collect();
                    if l.join(" ").contains(") = ") {
                        written += 1;
                    }
                }
            }
            Ok((written, lost))
        }
        _ => bail!("not a full stream"),
    }
}

pub fn run(tracer: &Path, rounds: usize) -> Result<Stream> {
    let dd_path = tools::find_in_path("dd").context("dd is not installed")?;
    let shm = PathBuf::from("/dev/shm").join(format!("tracer-bench-{}", std::process::id()));
    fs::create_dir_all(&shm).with_context(|| format!("cannot create {}", shm.display()))?;
    let mut s = Stream {
        rounds,
        rows: Mode::ALL.iter().map(|&m| (m, Vec::new())).collect(),
        failures: Vec::new(),
        startup_calls: None,
    };
    let result = (|| -> Result<()> {
        for round in 0..=rounds {
            let mut order = Mode::ALL.to_vec();
            order.rotate_left(round % Mode::ALL.len());
            let mut got: Vec<(Mode, Option<Run>)> = Vec::new();
            for mode in order {
                check_interrupted()?;
                let out = shm.join(format!("r{round}-{mode:?}.out"));
                let r = once(mode, tracer, &dd_path, &out, &mut s.startup_calls);
                let _ = fs::remove_file(&out);
                match r {
                    Ok(r) => {
                        eprintln!(
                            "xtask bench --stream: round {round}{}: {} {:.3} s",
                            if round == 0 { " (warm-up)" } else { "" },
                            mode.label(),
                            r.secs
                        );
                        got.push((mode, Some(r)));
                    }
                    Err(e) => {
                        s.failures.push(format!("{}: {e:#}", mode.label()));
                        got.push((mode, None));
                    }
                }
            }
            if round == 0 {
                continue;
            }
            for (mode, r) in got {
                if let Some(row) = s.rows.iter_mut().find(|(m, _)| *m == mode) {
                    row.1.push(r);
                }
            }
        }
        Ok(())
    })();
    let _ = fs::remove_dir_all(&shm);
    result?;
    Ok(s)
}

fn once(
    mode: Mode,
    tracer: &Path,
    dd_path: &Path,
    out: &Path,
    startup: &mut Option<u64>,
) -> Result<Run> {
    let argv = argv(mode, tracer, dd_path, out);
    let f = Proc::spawn(&argv, Watch::default())?.wait(RUN_TIMEOUT)?;
    f.ok()?;
    let n = DD_COUNT / mode.div();
    let secs = tools::dd_secs(&f.text()).context("dd printed no time")? * mode.div() as f64;
    let mut run = Run {
        secs,
        made: None,
        written: None,
        lost: None,
    };
    match mode {
        Mode::Aggregate => {
            let (_, counts) = tools::tracer_final(&fs::read_to_string(out)?)?;
            let total: u64 = counts.values().sum();
            *startup = Some(total.saturating_sub(2 * DD_COUNT));
            run.made = Some(total);
        }
        m if m.streams_all() => {
            let (written, lost) = stream_counts(m, &fs::read_to_string(out)?)?;
            run.made = startup.map(|c| 2 * n + c);
            run.written = Some(written);
            run.lost = Some(lost);
        }
        _ => {}
    }
    Ok(run)
}

fn secs_of(runs: &[Option<Run>]) -> Vec<f64> {
    runs.iter().flatten().map(|r| r.secs).collect()
}

/// Per round, `a`'s time over `b`'s (rounds where both ran).
fn ratios(a: &[Option<Run>], b: &[Option<Run>]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .filter_map(|(a, b)| Some(a.as_ref()?.secs / b.as_ref()?.secs))
        .collect()
}

pub fn markdown(s: &Stream) -> String {
    let of = |m: Mode| &s.rows.iter().find(|(x, _)| *x == m).expect("every mode").1;
    let mut md = format!(
        "## strace mode on W1: `dd if=/dev/zero of=/dev/null bs=1 count={DD_COUNT}`\n\n\
         {} rounds after a warm-up, every configuration once a round in a rotated order; a \
         run's figure is dd's own elapsed time. strace runs 1/{STRACE_DIV} of the count and \
         perf trace 1/{PERF_DIV}, their times multiplied back. Streams are written to files \
         in /dev/shm. Ratios are medians of per-round ratios (the same round's floor or \
         aggregate run). Calls made: aggregate mode's exact count for the full count; for \
         the scaled runs 2 per byte plus dd's {} calls outside its loop.\n\n\
         | configuration | dd time, median (s) | × floor | × aggregate | calls made | calls written | lost (said) | unaccounted |\n\
         |---|---|---|---|---|---|---|---|\n",
        s.rounds,
        s.startup_calls
            .map_or_else(|| "(unknown)".to_string(), |c| c.to_string()),
    );
    let fmt =
        |v: Option<f64>, digits: usize| v.map_or_else(|| "".into(), |x| format!("{x:.digits$}"));
    for &mode in &Mode::ALL {
        let runs = of(mode);
        let med = median(&secs_of(runs));
        let x_floor = (mode != Mode::Baseline && mode != Mode::Floor)
            .then(|| median(&ratios(runs, of(Mode::Floor))))
            .flatten();
        let x_agg = (mode.selective() || mode == Mode::TraceAll)
            .then(|| median(&ratios(runs, of(Mode::Aggregate))))
            .flatten();
        let last = runs.iter().flatten().next_back();
        let (made, written, lost, unaccounted) = match last {
            Some(r) if mode.streams_all() => {
                let un = match (r.made, r.written, r.lost) {
                    (Some(m), Some(w), Some(l)) => (m as i64 - (w + l) as i64).to_string(),
                    _ => String::new(),
                };
                (
                    r.made.map_or(String::new(), |v| v.to_string()),
                    r.written.map_or(String::new(), |v| v.to_string()),
                    r.lost.map_or(String::new(), |v| v.to_string()),
                    un,
                )
            }
            Some(r) => (
                r.made.map_or(String::new(), |v| v.to_string()),
                String::new(),
                String::new(),
                String::new(),
            ),
            None => Default::default(),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {made} | {written} | {lost} | {unaccounted} |\n",
            mode.label(),
            fmt(med, 3),
            fmt(x_floor, 2),
            fmt(x_agg, 3),
        ));
    }
    // Every round's written and lost for the full streams: losses vary run to run.
    md.push_str("\nFull streams, each round (written + lost of made):\n\n");
    for &mode in &[Mode::TraceAll, Mode::Strace, Mode::PerfTrace] {
        let cells: Vec<String> = of(mode)
            .iter()
            .map(|r| match r {
                Some(Run {
                    made: Some(m),
                    written: Some(w),
                    lost: Some(l),
                    ..
                }) => format!("{w} + {l} of {m}"),
                Some(_) => "?".into(),
                None => "failed".into(),
            })
            .collect();
        md.push_str(&format!("- {}: {}\n", mode.label(), cells.join("; ")));
    }
    let rates: Vec<f64> = of(Mode::TraceAll)
        .iter()
        .flatten()
        .filter_map(|r| Some(r.written? as f64 / r.secs))
        .collect();
    if let Some(rate) = median(&rates) {
        md.push_str(&format!(
            "\ntracer --trace wrote {rate:.0} calls a second (median over the rounds of the calls \
             written over dd's time).\n"
        ));
    }
    if !s.failures.is_empty() {
        md.push_str("\nFailed runs:\n\n");
        for f in &s.failures {
            md.push_str(&format!("- {f}\n"));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_streams_are_counted() {
        let t = "01:00:00.000001 [9 dd] read(0, \"\\0\", 1) = 1 <0.000001>\n\
                 tracer: 2000042 calls streamed, 17 lost (ring buffer full: 17, call table full: 0)\n";
        assert_eq!(stream_counts(Mode::TraceAll, t).unwrap(), (2_000_042, 17));
        let t = "42 read(0, \"\\0\", 1) = 1\n42 write(1, \"\\0\", 1 <unfinished ...>\n\
                 42 <... write resumed>)    = 1\n42 exit_group(0)      = ?\n42 +++ exited with 0 +++\n";
        assert_eq!(stream_counts(Mode::Strace, t).unwrap(), (3, 0));
        let t = "     0.004 ( 0.001 ms): dd/4242 read(fd: 0, buf: 0x55, count: 1) = 1\n\
                 LOST 12 events!\n\
                 \x20   11.928 (         ): dd/3544 exit_group()                    = ?\n";
        assert_eq!(stream_counts(Mode::PerfTrace, t).unwrap(), (2, 12));
    }
}
