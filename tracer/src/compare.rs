//! `tracer compare BEFORE AFTER` (issue 13): two windows of NDJSON recordings (two files,
//! or two time ranges of one: `FILE@START..END`, seconds from the recording's start),
//! figure by figure, with the change and whether it is beyond the windows' noise (see
//! [`crate::model::compare`]). Reads what `--output json --interval SECS` (or a `json:`
//! sink) writes; needs no privileges.
use std::{ffi::OsString, io::Write, path::PathBuf, process::ExitCode};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use serde_json::Value;

use crate::{
    cli::Format,
    model::compare::{self, Change, Figure, Interval, Verdict},
    render::term::printable,
};

#[derive(Debug, Parser)]
#[command(
    name = "tracer compare",
    about = "Compare two windows of tracer's NDJSON recordings: each figure's change, and whether it is beyond the windows' noise",
    color = clap::ColorChoice::Never,
    after_help = "A window is FILE (all its interval objects) or FILE@START..END (those between START and END seconds from the recording's start; either may be left out); intervals shorter than half the window's usual one (the last, partial one) are left out. Record with --output json --interval SECS, or --sink json:FILE --interval SECS."
)]
struct CompareCli {
    /// The window before: FILE or FILE@START..END.
    #[arg(value_parser = parse_window)]
    before: Window,
    /// The window after.
    #[arg(value_parser = parse_window)]
    after: Window,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Show every figure, not only those that changed.
    #[arg(long)]
    all: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct Window {
    path: PathBuf,
    from_s: Option<f64>,
    to_s: Option<f64>,
}

fn parse_window(s: &str) -> Result<Window, String> {
    let (path, range) = match s.rsplit_once('@') {
        Some((p, r)) if r.contains("..") => (p, Some(r)),
        _ => (s, None),
    };
    if path.is_empty() {
        return Err(format!("'{s}' names no file"));
    }
    let (from_s, to_s) = match range {
        None => (None, None),
        Some(r) => {
            let (a, b) = r.split_once("..").unwrap_or((r, ""));
            let num = |t: &str| -> Result<Option<f64>, String> {
                if t.is_empty() {
                    return Ok(None);
                }
                t.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .map(Some)
                    .ok_or_else(|| format!("'{t}' is not a number of seconds (in '{s}')"))
            };
            let (a, b) = (num(a)?, num(b)?);
            if let (Some(a), Some(b)) = (a, b)
                && b <= a
            {
                return Err(format!("'{s}': the range ends before it starts"));
            }
            (a, b)
        }
    };
    Ok(Window {
        path: path.into(),
        from_s,
        to_s,
    })
}

/// `tracer compare ARGS` (ARGS after `compare`).
pub fn main(args: Vec<OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("tracer compare")).chain(args);
    let cli = match CompareCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            eprintln!(
                "tracer compare: {} (see tracer compare --help)",
                printable(first)
            );
            return ExitCode::from(2);
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("tracer compare: {}", printable(&msg));
            ExitCode::from(1)
        }
    }
}

/// A window read: its intervals and what they cover.
struct Read {
    name: String,
    intervals: Vec<Interval>,
    seconds: f64,
}

fn run(cli: &CompareCli) -> Result<()> {
    let before = read(&cli.before)?;
    let after = read(&cli.after)?;
    let changes = compare::compare(&before.intervals, &after.intervals);
    let shown: Vec<&Change> = changes
        .iter()
        .filter(|c| cli.all || c.verdict == Verdict::Changed)
        .collect();
    let mut out = std::io::stdout().lock();
    let text = match cli.output {
        Format::Json => {
            let side = |r: &Read| serde_json::json!({ "window": r.name, "intervals": r.intervals.len(), "seconds": r.seconds });
            let v = serde_json::json!({
                "before": side(&before),
                "after": side(&after),
                "p_changed": compare::P_CHANGED,
                "min_change": compare::MIN_CHANGE,
                "changes": shown,
            });
            format!("{v}\n")
        }
        Format::Text => render_text(&before, &after, &shown, changes.len()),
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the comparison")
}

fn render_text(before: &Read, after: &Read, shown: &[&Change], total: usize) -> String {
    let mut s = format!(
        "before: {} ({} intervals, {:.1} s)\nafter:  {} ({} intervals, {:.1} s)\n",
        printable(&before.name),
        before.intervals.len(),
        before.seconds,
        printable(&after.name),
        after.intervals.len(),
        after.seconds,
    );
    let changed = shown
        .iter()
        .filter(|c| c.verdict == Verdict::Changed)
        .count();
    s.push_str(&format!(
        "{changed} of {total} figures changed beyond the windows' noise (Welch's t-test, p < {}, at least {:.0}%)\n",
        compare::P_CHANGED,
        compare::MIN_CHANGE * 100.0
    ));
    if shown.is_empty() {
        return s;
    }
    s.push_str(&format!(
        "  {:<14} {:>9} {:>12} {:>12} {:>8}  figure\n",
        "verdict", "change", "before", "after", "p"
    ));
    for c in shown {
        let verdict = match c.verdict {
            Verdict::Changed => "changed",
            Verdict::WithinNoise => "within noise",
            Verdict::TooFewIntervals => "too few",
        };
        let change = c
            .change
            .map_or_else(|| "new".to_string(), |v| format!("{:+.1}%", v * 100.0));
        let p = match c.p_value {
            None => "-".to_string(),
            Some(p) if p < 0.001 => "<0.001".to_string(),
            Some(p) => format!("{p:.3}"),
        };
        s.push_str(&format!(
            "  {:<14} {:>9} {:>12} {:>12} {:>8}  {} {}\n",
            verdict,
            change,
            number(c.before),
            number(c.after),
            p,
            c.figure.group,
            printable(&c.figure.name)
        ));
    }
    s
}

fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn read(w: &Window) -> Result<Read> {
    let shown = w.path.display().to_string();
    let text = std::fs::read_to_string(&w.path).with_context(|| format!("cannot read {shown}"))?;
    let mut objects = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| anyhow!("{shown}:{}: not a JSON object of tracer's: {e}", i + 1))?;
        if v["schema_version"] != 2 {
            bail!("{shown}:{}: not a report of tracer's JSON schema 2", i + 1);
        }
        objects.push(v);
    }
    let intervals: Vec<&Value> = objects.iter().filter(|v| v["type"] == "interval").collect();
    let t0 = intervals
        .first()
        .and_then(|v| v["start_mono_ns"].as_u64())
        .ok_or_else(|| {
            anyhow!("{shown} has no interval objects (record with --output json --interval SECS)")
        })?;
    let at = |v: &Value, k: &str| {
        v[k].as_u64()
            .map_or(0.0, |ns| ns.saturating_sub(t0) as f64 / 1e9)
    };
    let picked: Vec<&Value> = intervals
        .into_iter()
        .filter(|v| w.from_s.is_none_or(|a| at(v, "start_mono_ns") >= a - 1e-6))
        .filter(|v| w.to_s.is_none_or(|b| at(v, "end_mono_ns") <= b + 1e-6))
        .collect();
    // A short interval (the last, partial one) is a sample of another size: left out.
    let mut lengths: Vec<f64> = picked
        .iter()
        .filter_map(|v| v["duration_s"].as_f64())
        .collect();
    lengths.sort_by(f64::total_cmp);
    let typical = lengths.get(lengths.len() / 2).copied().unwrap_or(0.0);
    let picked: Vec<&Value> = picked
        .into_iter()
        .filter(|v| v["duration_s"].as_f64().is_some_and(|d| d >= typical / 2.0))
        .collect();
    if picked.is_empty() {
        bail!("no interval of {shown} lies within the window");
    }
    let name = match (w.from_s, w.to_s) {
        (None, None) => shown,
        (a, b) => format!(
            "{shown} from {} s to {} s",
            a.map_or("the start".into(), |v| v.to_string()),
            b.map_or("the end".into(), |v| v.to_string())
        ),
    };
    Ok(Read {
        name,
        seconds: picked
            .iter()
            .map(|v| v["duration_s"].as_f64().unwrap_or(0.0))
            .sum(),
        intervals: picked.into_iter().map(figures).collect(),
    })
}

/// The figures of one interval object.
fn figures(v: &Value) -> Interval {
    let secs = v["duration_s"].as_f64().unwrap_or(0.0);
    let mut i = Interval::default();
    if secs <= 0.0 {
        return i;
    }
    let mut put = |group: &'static str, name: String, value: f64| {
        i.figures.insert(Figure { group, name }, value);
    };
    for row in v["syscalls"].as_array().into_iter().flatten() {
        let mut name = row["name"].as_str().unwrap_or("?").to_string();
        if row["abi"] == "i386" {
            name.push_str(" (i386)");
        }
        let calls = row["calls"].as_f64().unwrap_or(0.0);
        put("syscall", format!("{name} calls/s"), calls / secs);
        let errors = row["errors"].as_f64().unwrap_or(0.0);
        if errors > 0.0 {
            put("syscall", format!("{name} errors/s"), errors / secs);
        }
        if let Some(total) = row["total_ns"].as_f64()
            && calls > 0.0
        {
            put(
                "syscall",
                format!("{name} mean latency us"),
                total / calls / 1e3,
            );
        }
    }
    let s = &v["sched"];
    if s.is_object() {
        let n = |k: &str| s[k].as_f64().unwrap_or(0.0);
        put(
            "sched",
            "voluntary switches/s".into(),
            n("voluntary_switches") / secs,
        );
        put(
            "sched",
            "involuntary switches/s".into(),
            n("involuntary_switches") / secs,
        );
        put("sched", "on-CPU share".into(), n("on_cpu_ns") / 1e9 / secs);
        put(
            "sched",
            "blocked share".into(),
            n("blocked_ns") / 1e9 / secs,
        );
        let runq = s["runqueue"]["total_ns"].as_f64().unwrap_or(0.0);
        put("sched", "run-queue share".into(), runq / 1e9 / secs);
    }
    if let Some(rss) = v["memory"]["rss"]["end_bytes"].as_f64() {
        put("memory", "RSS MiB".into(), rss / 1048576.0);
    }
    if let Some(fds) = v["fds"]["end"].as_f64() {
        put("memory", "open descriptors".into(), fds);
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_files_or_ranges_of_them() {
        let w = |s: &str| parse_window(s).unwrap();
        assert_eq!(w("a.ndjson").path, PathBuf::from("a.ndjson"));
        assert_eq!(
            (w("a@10..20").from_s, w("a@10..20").to_s),
            (Some(10.0), Some(20.0))
        );
        assert_eq!((w("a@..20").from_s, w("a@..20").to_s), (None, Some(20.0)));
        assert_eq!((w("a@5..").from_s, w("a@5..").to_s), (Some(5.0), None));
        // An @ without a range is part of the name.
        assert_eq!(w("run@host.ndjson").path, PathBuf::from("run@host.ndjson"));
        for bad in ["@1..2", "a@x..2", "a@3..2", "a@-1..2"] {
            let e = parse_window(bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    /// The figures of an interval object of schema 2 (as the JSON writer makes them).
    #[test]
    fn an_interval_object_gives_its_figures() {
        let v = serde_json::json!({
            "schema_version": 2, "type": "interval", "duration_s": 2.0,
            "syscalls": [
                { "name": "read", "abi": "x86_64", "calls": 100, "errors": 4, "total_ns": 50000 },
                { "name": "getppid", "abi": "i386", "calls": 10, "errors": 0, "total_ns": null },
            ],
            "sched": { "voluntary_switches": 6, "involuntary_switches": 2, "on_cpu_ns": 500000000u64,
                       "blocked_ns": 1000000000u64, "runqueue": { "total_ns": 100000000u64 } },
            "memory": { "rss": { "end_bytes": 2097152 } },
            "fds": { "end": 7 },
        });
        let f = figures(&v).figures;
        let get = |n: &str| {
            *f.iter()
                .find(|(k, _)| k.name == n)
                .unwrap_or_else(|| panic!("no {n}: {f:?}"))
                .1
        };
        assert_eq!(get("read calls/s"), 50.0);
        assert_eq!(get("read errors/s"), 2.0);
        assert_eq!(get("read mean latency us"), 0.5);
        assert_eq!(get("getppid (i386) calls/s"), 5.0);
        assert!(!f.keys().any(|k| k.name == "getppid (i386) mean latency us"));
        assert_eq!(get("on-CPU share"), 0.25);
        assert_eq!(get("run-queue share"), 0.05);
        assert_eq!(get("voluntary switches/s"), 3.0);
        assert_eq!(get("RSS MiB"), 2.0);
        assert_eq!(get("open descriptors"), 7.0);
    }
}
