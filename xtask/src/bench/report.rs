//! The markdown report: machine, method, one table per workload, first-report latency,
//! the targets, and notes. Pure formatting of [`Results`].
use std::fmt::Write;

use super::{Cell, FirstReport, Results, Sizes, Table, Workload, tools::Config};

pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    Some(if s.len().is_multiple_of(2) {
        (s[m - 1] + s[m]) / 2.0
    } else {
        s[m]
    })
}

/// A distribution-free 95% confidence interval for the median: the order statistics
/// x(k) and x(n+1-k) with k the largest for which P(Binomial(n, 1/2) < k) ≤ 2.5%. None
/// when n < 6, where even (min, max) covers less than 95%.
pub fn median_ci(v: &[f64]) -> Option<(f64, f64)> {
    let n = v.len();
    // P(B ≤ i) for i = 0, 1, ...; the largest i with P(B ≤ i) ≤ 0.025 is k - 1.
    let mut p = 0.5f64.powi(i32::try_from(n).ok()?);
    let mut cdf = p;
    let mut k = 0;
    while cdf <= 0.025 && k < n / 2 {
        k += 1;
        p *= (n - (k - 1)) as f64 / k as f64;
        cdf += p;
    }
    if k == 0 {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some((s[k - 1], s[n - k]))
}

fn min(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::min)
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.3} s")
    } else {
        format!("{s:.2} s")
    }
}

fn count(n: u64) -> String {
    match n {
        n if n >= 10_000_000 => format!("{:.0}M", n as f64 / 1e6),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{:.0}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn cell_median(t: &Table, cfg: Config) -> Option<f64> {
    t.cells.get(&cfg).and_then(|c| median(&c.times))
}

/// Median over the rounds of `cfg`'s time over `base`'s time in the same round: each
/// round runs every configuration within a short span, so this cancels the machine's
/// drift between rounds, which the ratio of medians does not.
fn paired_ratio(t: &Table, cfg: Config, base: Config) -> Option<f64> {
    let (a, b) = (t.cells.get(&cfg)?, t.cells.get(&base)?);
    let ratios: Vec<f64> = a
        .rounds
        .iter()
        .zip(&a.times)
        .filter_map(|(r, x)| {
            let i = b.rounds.iter().position(|q| q == r)?;
            Some(x / b.times[i])
        })
        .collect();
    median(&ratios)
}

/// Median over the back-to-back pairs of tracer's time over the floor's.
fn pair_ratio(t: &Table) -> Option<f64> {
    median(&pair_ratios(t))
}

/// Each back-to-back pair's tracer time over its floor time.
fn pair_ratios(t: &Table) -> Vec<f64> {
    t.pairs.iter().map(|(f, a)| a / f).collect()
}

fn pairs_table(out: &mut String, r: &Results) {
    let tables: Vec<&Table> = r.tables.iter().filter(|t| !t.pairs.is_empty()).collect();
    if tables.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Floor and tracer back to back\n\n\
         After the rounds, each target workload runs the floor and tracer with all sections \
         back to back, alternating which goes first (floor-tracer, tracer-floor, ...: a \
         steady drift cancels): {} pairs for W1 and W2, {} for W4, whose margin is 5% where \
         theirs is 30%. Each pair is seconds apart, where the rounds put other tools between \
         them. The targets use the median of these ratios. **95% CI**: a distribution-free \
         confidence interval for that median (binomial order statistics).\n",
        Workload::W1.pairs(&r.sizes),
        Workload::W4.pairs(&r.sizes),
    );
    let _ = writeln!(
        out,
        "| workload | pairs | tracer / floor, median | 95% CI | min | max | floor, median | tracer, median |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for t in tables {
        let ratios = pair_ratios(t);
        let floors: Vec<f64> = t.pairs.iter().map(|p| p.0).collect();
        let tracers: Vec<f64> = t.pairs.iter().map(|p| p.1).collect();
        let x = |v: Option<f64>| v.map_or("—".into(), |x| format!("{x:.2}×"));
        let s = |v: Option<f64>| v.map_or("—".into(), secs);
        let _ = writeln!(
            out,
            "| {:?} | {} | {} | {} | {} | {} | {} | {} |",
            t.workload,
            t.pairs.len(),
            x(median(&ratios)),
            median_ci(&ratios).map_or("—".into(), |(lo, hi)| format!("{lo:.2}-{hi:.2}×")),
            x(min(&ratios)),
            x(max(&ratios)),
            s(median(&floors)),
            s(median(&tracers)),
        );
    }
    out.push('\n');
}

fn table_of(r: &Results, w: Workload) -> Option<&Table> {
    r.tables.iter().find(|t| t.workload == w)
}

fn title(w: Workload, s: &Sizes) -> String {
    match w {
        Workload::W1 => format!(
            "W1: `dd if=/dev/zero of=/dev/null bs=1 count={}` (syscall-bound; dd's own time)",
            s.dd_count
        ),
        Workload::W2 => format!(
            "W2: `taskset -c 0 perf bench sched pipe -l {}` (context-switch-bound; perf's usecs/op × loops)",
            s.pipe_loops
        ),
        Workload::W3 => format!(
            "W3: `tracer-workload churn {} {}` (mmap {} MiB, touch every page, munmap; the workload process from exec to exit)",
            s.churn_rounds, s.churn_mib, s.churn_mib
        ),
        Workload::W4 => format!(
            "W4: W1's dd (count={}), untraced, while the tool watches an idle `sleep` (what everybody else pays)",
            s.dd_count
        ),
    }
}

fn config_label(c: Config, cell: &Cell) -> String {
    if cell.scale > 1 {
        format!(
            "{} (1/{} size, time ×{})",
            c.label(),
            cell.scale,
            cell.scale
        )
    } else {
        c.label().to_string()
    }
}

fn checks(cell: &Cell) -> String {
    if cell.checks.is_empty() {
        return "—".into();
    }
    let bad: Vec<_> = cell.checks.iter().filter(|c| !c.ok).collect();
    match bad.first() {
        None => format!("OK ({})", cell.checks[0].detail),
        Some(b) => format!(
            "MISMATCH in {} of {} runs: {}",
            bad.len(),
            cell.checks.len(),
            b.detail
        ),
    }
}

fn workload_table(out: &mut String, r: &Results, t: &Table) {
    let _ = writeln!(out, "## {}\n", title(t.workload, &r.sizes));
    if let Some((n, what)) = &t.events {
        let _ = writeln!(out, "Events per run: {} {what}.\n", count(*n as u64));
    }
    let _ = writeln!(
        out,
        "| configuration | median | min | max | × baseline | × floor | × floor, paired | +ns/event | lost | peak RSS | prog ns/run | counts check |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    let base = cell_median(t, Config::Baseline);
    let floor = cell_median(t, Config::Floor);
    for (&cfg, cell) in &t.cells {
        let label = config_label(cfg, cell);
        if let Some(why) = &cell.skipped {
            let _ = writeln!(out, "| {label} | skipped: {} ||||||||||| ", short(why));
            continue;
        }
        let Some(m) = median(&cell.times) else {
            let why = cell.failures.first().map_or("no run", String::as_str);
            let _ = writeln!(out, "| {label} | failed: {} ||||||||||| ", short(why));
            continue;
        };
        let ratio = |d: Option<f64>| d.map_or("—".into(), |d| format!("{:.2}×", m / d));
        let paired =
            paired_ratio(t, cfg, Config::Floor).map_or("—".into(), |x| format!("{x:.2}×"));
        let per_event = match (base, &t.events) {
            (Some(b), Some((n, _))) if cfg != Config::Baseline && *n > 0.0 => {
                format!("{:+.0}", (m - b) * 1e9 / n)
            }
            _ => "—".into(),
        };
        let lost = cell.lost.iter().max().map_or("—".into(), |l| l.to_string());
        let rss = cell.rss_kib.iter().max().map_or("—".into(), |&k| mib(k));
        let prog = cell
            .progs
            .filter(|p| p.programs > 0)
            .and_then(|p| {
                p.ns_per_run()
                    .map(|ns| format!("{ns:.0} ({} progs, {} runs)", p.programs, count(p.run_cnt)))
            })
            .unwrap_or_else(|| "—".into());
        let failed = if cell.failures.is_empty() {
            String::new()
        } else {
            format!(" ({} failed)", cell.failures.len())
        };
        let _ = writeln!(
            out,
            "| {label}{failed} | {} | {} | {} | {} | {} | {paired} | {per_event} | {lost} | {rss} | {prog} | {} |",
            secs(m),
            secs(min(&cell.times).unwrap_or(m)),
            secs(max(&cell.times).unwrap_or(m)),
            ratio(base),
            ratio(floor),
            checks(cell),
        );
    }
    out.push('\n');
}

/// Text made safe for one markdown table cell or list item.
fn one_line(s: &str) -> String {
    s.replace(['\n', '|'], " ")
}

/// The same, cut to a length that keeps a table readable.
fn short(s: &str) -> String {
    let s = one_line(s);
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

fn kernel_memory(out: &mut String, rows: &[super::kmem::Row]) {
    let _ = writeln!(out, "## Kernel memory\n");
    let _ = writeln!(
        out,
        "`tracer --pid <idle sleep>` (all sections), the memlock of every BPF map it holds \
         (/proc/PID/fdinfo) beside its RSS, at this machine's pid_max and at systemd's \
         default (set for the measurement, then put back). Issue 12's target: at most 16 MiB \
         of maps at pid_max 4194304.\n"
    );
    let _ = writeln!(
        out,
        "| pid_max | options | maps | tracer RSS |\n|---:|---|---:|---:|"
    );
    for r in rows {
        let opts = if r.args.is_empty() { "-" } else { r.args };
        let _ = writeln!(
            out,
            "| {} | {opts} | {:.1} MiB | {:.1} MiB |",
            r.pid_max,
            r.maps_kib as f64 / 1024.0,
            r.rss_kib as f64 / 1024.0
        );
    }
    out.push('\n');
}

fn first_report(out: &mut String, f: &FirstReport) {
    let _ = writeln!(out, "## First report\n");
    let _ = writeln!(
        out,
        "`tracer --pid <idle sleep>` (text), started {} times; time from spawn.\n",
        f.attach.len() + f.failures.len()
    );
    let _ = writeln!(out, "| from spawn to | median | min | max |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (what, v) in [
        ("the \"tracing\" line (attached)", &f.attach),
        ("the first report line", &f.first),
    ] {
        match median(v) {
            Some(m) => {
                let _ = writeln!(
                    out,
                    "| {what} | {} | {} | {} |",
                    secs(m),
                    secs(min(v).unwrap_or(m)),
                    secs(max(v).unwrap_or(m))
                );
            }
            None => {
                let _ = writeln!(out, "| {what} | not measured | | |");
            }
        }
    }
    if let Some(k) = f.rss_kib.iter().max() {
        let _ = writeln!(out, "\ntracer's peak RSS in these runs: {}.", mib(*k));
    }
    for e in &f.failures {
        let _ = writeln!(out, "\nA run failed: {}", one_line(e));
    }
    out.push('\n');
}

/// (target, measured, met: Some(bool) or None when not measured)
fn targets(r: &Results) -> Vec<(String, String, Option<bool>)> {
    let mut v = Vec::new();
    let ratio_to_floor = |w: Workload| -> Option<(f64, f64)> {
        let t = table_of(r, w)?;
        Some((
            paired_ratio(t, Config::All, Config::Floor)?,
            cell_median(t, Config::All)? / cell_median(t, Config::Floor)?,
        ))
    };
    for (w, limit, what) in [
        (
            Workload::W1,
            1.3,
            "W1: tracer, all sections ≤ 1.3× the floor",
        ),
        (
            Workload::W2,
            1.3,
            "W2: tracer, all sections ≤ 1.3× the floor",
        ),
        (
            Workload::W4,
            1.05,
            "W4: tracer, all sections within 5% of the floor's W4",
        ),
    ] {
        let rounds = ratio_to_floor(w).map(|(x, m)| {
            let text = format!("{x:.2}× (median of per-round ratios; ratio of medians {m:.2}×)");
            (x, text)
        });
        let pairs = table_of(r, w).and_then(|t| Some((pair_ratio(t)?, t)));
        v.push(match (pairs, rounds) {
            (Some((p, t)), rounds) => (
                what.into(),
                format!(
                    "{p:.2}× (median of {} back-to-back pairs{}){}",
                    t.pairs.len(),
                    median_ci(&pair_ratios(t)).map_or(String::new(), |(lo, hi)| format!(
                        ", 95% CI {lo:.2}-{hi:.2}×"
                    )),
                    rounds.map_or(String::new(), |(_, r)| format!("; rounds: {r}"))
                ),
                Some(p <= limit),
            ),
            (None, Some((x, r))) => (what.into(), r, Some(x <= limit)),
            (None, None) => (what.into(), "not measured".into(), None),
        });
    }

    let what = "Kernel maps at pid_max 4194304 ≤ 16 MiB (issue 12), with and without --threads";
    let at_systemd: Vec<_> = r
        .kmem
        .iter()
        .flatten()
        .filter(|k| k.pid_max == super::kmem::SYSTEMD_PID_MAX)
        .collect();
    v.push(match at_systemd.iter().map(|k| k.maps_kib).max() {
        Some(m) => (
            what.into(),
            format!("at most {:.1} MiB", m as f64 / 1024.0),
            Some(m <= 16 * 1024),
        ),
        None => (what.into(), "not measured".into(), None),
    });

    let tracer_cells = |ws: &[Workload], cfgs: &[Config]| -> Vec<&Cell> {
        r.tables
            .iter()
            .filter(|t| ws.contains(&t.workload))
            .flat_map(|t| cfgs.iter().filter_map(|c| t.cells.get(c)))
            .collect()
    };
    let counted = [Config::All, Config::AllExact, Config::Syscalls];
    let lost: Vec<u64> = tracer_cells(&[Workload::W1, Workload::W2, Workload::W3], &counted)
        .iter()
        .flat_map(|c| c.lost.iter().copied())
        .collect();
    let what = "Zero lost events in W1–W3 (every tracer configuration)";
    v.push(match lost.iter().max() {
        Some(&m) => (
            what.into(),
            format!("max {m} over {} runs", lost.len()),
            Some(m == 0),
        ),
        None => (what.into(), "not measured".into(), None),
    });

    let checks: Vec<_> = tracer_cells(&[Workload::W1], &counted)
        .iter()
        .flat_map(|c| c.checks.iter())
        .collect();
    let what = "W1: tracer's read and write counts equal dd's exact counts";
    v.push(if checks.is_empty() {
        (what.into(), "not measured".into(), None)
    } else {
        let bad: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
        match bad.first() {
            None => (
                what.into(),
                format!(
                    "equal in {} of {} runs ({})",
                    checks.len(),
                    checks.len(),
                    checks[0].detail
                ),
                Some(true),
            ),
            Some(b) => (
                what.into(),
                format!(
                    "different in {} of {} runs: {}",
                    bad.len(),
                    checks.len(),
                    b.detail
                ),
                Some(false),
            ),
        }
    });

    let all_workloads = [Workload::W1, Workload::W2, Workload::W3, Workload::W4];
    let rss = tracer_cells(
        &all_workloads,
        &[
            Config::Floor,
            Config::All,
            Config::AllExact,
            Config::Syscalls,
        ],
    )
    .iter()
    .flat_map(|c| c.rss_kib.iter().copied())
    .chain(r.first.iter().flat_map(|f| f.rss_kib.iter().copied()))
    .max();
    let what = "tracer's peak RSS ≤ 30 MiB";
    v.push(match rss {
        Some(k) => (
            what.into(),
            format!("{} (largest of all tracer runs)", mib(k)),
            Some(k <= 30 * 1024),
        ),
        None => (what.into(), "not measured".into(), None),
    });

    let what = "First report ≤ 0.5 s after start";
    v.push(
        match r
            .first
            .as_ref()
            .and_then(|f| median(&f.first).map(|m| (m, f)))
        {
            Some((m, f)) => (
                what.into(),
                format!(
                    "{} median (max {}; attached after {} median)",
                    secs(m),
                    secs(max(&f.first).unwrap_or(m)),
                    secs(median(&f.attach).unwrap_or(0.0))
                ),
                Some(m <= 0.5),
            ),
            None => (what.into(), "not measured".into(), None),
        },
    );
    v
}

fn method(out: &mut String, s: &Sizes) {
    let _ = writeln!(
        out,
        "## Method

- Each round runs every workload under every configuration, in an order rotated by one
  each round so that drift hits all configurations alike. Round 0 is a warm-up whose times
  are discarded; {runs} counted rounds follow. median, min and max are over the counted runs.
- The warm-up is the only round run with `kernel.bpf_stats_enabled=1`: **prog ns/run** (the
  kernel programs' own run time, run_time_ns / run_cnt summed over every BPF program the tool
  loaded) comes from it. The benchmark holds its own reference to each program (by id) and
  reads the counters from its fdinfo after the tool exits. Counted runs have the stats off,
  since they add two clock reads to every program run. The sysctl is restored at the end.
- Times: W1 and W4: dd's own time (its `copied, X s` line). W2: perf bench's usecs/op × loops.
  W3: the workload process from its exec (its comm seen in /proc, polled every 1 ms) to its
  exit (its pidfd), so no tool's start-up is counted.
- strace and perf trace run W1 and W2 at 1/{div} of the size and their time is multiplied by {div}
  (both workloads report per-operation times, so this scales linearly); the rows say so.
- **× baseline**, **× floor**: median over the baseline's (no tool) or the floor's median. The
  floor is `tracer --bench-floor`: empty programs on the same hooks as tracer with all sections.
- **× floor, paired**: the median over the rounds of the configuration's time over the floor's
  time in the same round. A round runs every configuration within a short span, so this
  cancels the machine's drift between rounds (which moves medians by 20-40% on a VM). The
  targets use the back-to-back pairs run after the rounds (their own table, below the
  workloads), and this when there are none.
- **+ns/event**: (median − baseline median) / events per run (given above each table).
- **lost**: tracer's `lost_events` from its final JSON object (largest over the runs). Peers
  report no losses; events they miss show in the counts check.
- **peak RSS**: VmHWM of the tool's own process, sampled every 20 ms while it runs (and, for
  tools that watch by pid, wait4's ru_maxrss, exact since they reap nothing); largest over runs.
- **counts check**: the exact counts come from `strace -f -c` of the same workload at three
  small sizes: a + b·size fitted on two and verified on the third, then evaluated at the run's
  size. OK means every run's checked syscalls equal it exactly. (For dd here that is count + 3
  reads, libc's ELF header and locale.alias twice, and count + 3 writes, its three summary
  lines; the reference measures this instead of assuming it.)
- bpftrace filters on `pid == cpid` (the process it started), as a per-process count would; in
  W2 it therefore misses perf bench's forked child. strace -f, perf trace and tracer with all
  sections (`--follow`) follow children; tracer with syscalls only cannot (following needs
  the life section's fork hook), so its W2 counts cover the parent only.
- W4: the tool watches an idle `sleep infinity` (tracer/strace/perf trace with `-p`/`--pid`,
  bpftrace with `pid == N`); once it has attached (tracer's and strace's stderr line; bpftrace's
  `Attaching` line + 1 s; perf trace: 2 s) dd runs untraced {w4_runs} times in a row, the run's
  time being their median (this VM's speed moves by 10-20% within a second); then the tool
  gets SIGINT. The programs then run mostly for dd's syscalls, so W4's **prog ns/run** is
  close to what one syscall hook costs an untraced process (floor: an empty program).
",
        runs = s.runs,
        div = s.peer_div,
        w4_runs = super::W4_DD_RUNS,
    );
}

pub fn render(r: &Results) -> String {
    let s = &r.sizes;
    let mut out = String::new();
    let _ = writeln!(out, "# tracer benchmark results\n");
    if s.quick {
        let _ = writeln!(
            out,
            "> **QUICK RUN** (`cargo xtask bench --quick`): small sizes and {} counted runs, made while \
             developing the benchmark on a machine busy with other work. These numbers are noisy and \
             are not the project's results; run `cargo xtask bench` for those.\n",
            s.runs
        );
    }
    let _ = writeln!(
        out,
        "Produced by `cargo xtask bench{}` ({} counted runs after one warm-up).\n",
        if s.quick { " --quick" } else { "" },
        s.runs
    );
    let _ = writeln!(out, "## Machine\n\n| | |\n|---|---|");
    for (k, v) in &r.machine {
        let _ = writeln!(out, "| {k} | {} |", one_line(v));
    }
    out.push('\n');
    method(&mut out, s);
    for t in &r.tables {
        workload_table(&mut out, r, t);
    }
    pairs_table(&mut out, r);
    if let Some(f) = &r.first {
        first_report(&mut out, f);
    }
    if let Some(k) = &r.kmem {
        kernel_memory(&mut out, k);
    }
    let _ = writeln!(out, "## Targets (issues 5 and 12)\n");
    let _ = writeln!(out, "| target | measured | met? |\n|---|---|---|");
    for (what, measured, met) in targets(r) {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(out, "| {what} | {} | {met} |", one_line(&measured));
    }
    out.push('\n');

    let mut notes = r.notes.clone();
    for t in &r.tables {
        for (cfg, cell) in &t.cells {
            if !cell.failures.is_empty() && !cell.times.is_empty() {
                notes.push(format!(
                    "{:?} {}: {} of {} counted runs failed (first: {})",
                    t.workload,
                    cfg.label(),
                    cell.failures.len(),
                    cell.failures.len() + cell.times.len(),
                    one_line(&cell.failures[0])
                ));
            }
        }
    }
    for (w, m) in &r.models {
        if m.is_ok() {
            notes.push(format!(
                "{w:?}: exact counts from the strace reference (linear in the size, verified)."
            ));
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "## Notes\n");
        for n in notes {
            let _ = writeln!(out, "- {}", one_line(&n));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn paired_ratio_matches_rounds_and_cancels_drift() {
        let cell = |times: &[f64], rounds: &[usize]| Cell {
            times: times.to_vec(),
            rounds: rounds.to_vec(),
            ..Default::default()
        };
        let mut cells = std::collections::BTreeMap::new();
        // The machine slows down 2x from round to round; tracer is 1.2x the floor in each.
        cells.insert(Config::Floor, cell(&[1.0, 2.0, 4.0], &[1, 2, 3]));
        // Round 2 of tracer failed: it has no pair.
        cells.insert(Config::All, cell(&[1.2, 4.8], &[1, 3]));
        let t = Table {
            workload: Workload::W1,
            cells,
            events: None,
            pairs: Vec::new(),
        };
        let paired = paired_ratio(&t, Config::All, Config::Floor).unwrap();
        assert!((paired - 1.2).abs() < 1e-9, "{paired}");
        // The ratio of medians would say 1.5x.
        let medians =
            cell_median(&t, Config::All).unwrap() / cell_median(&t, Config::Floor).unwrap();
        assert!((medians - 1.5).abs() < 1e-9, "{medians}");
        assert_eq!(paired_ratio(&t, Config::Syscalls, Config::Floor), None);
    }

    #[test]
    fn targets_use_the_back_to_back_pairs() {
        let mut cells = std::collections::BTreeMap::new();
        let cell = |times: &[f64]| Cell {
            times: times.to_vec(),
            rounds: (1..=times.len()).collect(),
            ..Default::default()
        };
        // In the rounds tracer looks 1.5x the floor; back to back it is 1.2x.
        cells.insert(Config::Floor, cell(&[1.0, 1.0, 1.0]));
        cells.insert(Config::All, cell(&[1.5, 1.5, 1.5]));
        let t = Table {
            workload: Workload::W1,
            cells,
            events: None,
            pairs: vec![(1.0, 1.2), (2.0, 2.4), (1.0, 1.3), (1.0, 1.1), (0.5, 0.6)],
        };
        assert!((pair_ratio(&t).unwrap() - 1.2).abs() < 1e-9);
        let r = Results {
            sizes: Sizes::new(true, None, None),
            machine: Vec::new(),
            notes: Vec::new(),
            tables: vec![t],
            first: None,
            kmem: None,
            models: Default::default(),
        };
        let (what, measured, met) = &targets(&r)[0];
        assert!(what.starts_with("W1"), "{what}");
        assert!(
            measured.starts_with("1.20× (median of 5 back-to-back pairs)"),
            "{measured}"
        );
        assert_eq!(*met, Some(true));
        // 5 pairs are too few for a 95% interval: the cell says so.
        assert!(render(&r).contains("| W1 | 5 | 1.20× | — | 1.10× | 1.30× |"));
    }

    #[test]
    fn median_intervals_use_binomial_order_statistics() {
        let v = |n: usize| (1..=n).rev().map(|i| i as f64).collect::<Vec<_>>();
        // n = 5: (min, max) covers 1 - 2/32 = 93.75%, short of 95%.
        assert_eq!(median_ci(&v(5)), None);
        // n = 6: (min, max) covers 1 - 2/64 = 96.9%.
        assert_eq!(median_ci(&v(6)), Some((1.0, 6.0)));
        // n = 12: P(B ≤ 2) = 79/4096 = 1.9% but P(B ≤ 3) = 7.3%: x(3) and x(10).
        assert_eq!(median_ci(&v(12)), Some((3.0, 10.0)));
        // n = 48: P(B ≤ 16) = 1.3%, P(B ≤ 17) = 2.9%: x(17) and x(32).
        assert_eq!(median_ci(&v(48)), Some((17.0, 32.0)));
        assert_eq!(median_ci(&[]), None);
    }

    #[test]
    fn counts_are_short() {
        assert_eq!(count(999), "999");
        assert_eq!(count(2_000_125), "2.0M");
        assert_eq!(count(327_770), "328k");
    }
}
