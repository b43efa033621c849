//! `cargo xtask bench --tui` (issue 16): what the live view costs. tracer traces 50 threads
//! (the workload's `pool`: each makes 100 getppid a second) with `--threads --interval 1`
//! for [`RUN`], in a tmux terminal of 200x60, once with `--tui` and once writing its text
//! reports to that terminal; its CPU (utime + stime from /proc) is measured over the
//! middle of the run, and the view's own share is the difference. Runs alternate, in
//! pairs. It reports; it asserts nothing (the target is at most 2% of a core).
use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    proc::check_interrupted,
    soak::{cpu_ticks, ticks_per_s},
};

/// tracer's `--duration`; the workload lives a little longer.
const RUN: Duration = Duration::from_secs(20);
/// CPU is measured from this long after tracer starts (loading, the first report) ...
const WARM: Duration = Duration::from_secs(3);
/// ... for this long.
const MEASURE: Duration = Duration::from_secs(15);
const THREADS: u32 = 50;
const HZ: u32 = 100;

/// One pair: tracer's CPU with the view and with text reports, as shares of one core.
pub struct Pair {
    pub tui: f64,
    pub text: f64,
}

pub fn run(tracer: &Path, workload: &Path, tmp: &Path, pairs: usize) -> Result<Vec<Pair>> {
    if super::tools::find_in_path("tmux").is_none() {
        bail!(
            "the view's benchmark runs tracer --tui in tmux, which is not installed (apt-get install tmux)"
        );
    }
    let dir = tmp.join("tui");
    fs::create_dir_all(&dir)?;
    let mut out = Vec::new();
    for i in 0..pairs {
        // Alternate which goes first, so that a drift of the machine's speed evens out.
        let (a, b) = if i % 2 == 0 {
            (true, false)
        } else {
            (false, true)
        };
        let first = one(tracer, workload, &dir.join(format!("{i}a")), a)?;
        let second = one(tracer, workload, &dir.join(format!("{i}b")), b)?;
        let (tui, text) = if a { (first, second) } else { (second, first) };
        eprintln!(
            "xtask bench: tui pair {}: --tui {:.2}%, text {:.2}% of a core",
            i + 1,
            100.0 * tui,
            100.0 * text
        );
        out.push(Pair { tui, text });
    }
    let _ = fs::remove_dir_all(&dir);
    Ok(out)
}

fn tmux(sock: &Path) -> Command {
    let mut c = Command::new("tmux");
    c.arg("-f").arg("/dev/null").arg("-S").arg(sock);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    c
}

/// The pid of the tracer the pane's shell runs (a child of it named tracer).
fn tracer_pid(shell: i32) -> Option<i32> {
    fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                let Some((name, rest)) = s.split_once(") ") else {
                    return false;
                };
                let ppid = rest
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<i32>().ok());
                name.ends_with("(tracer") && ppid == Some(shell)
            })
        })
}

/// tracer's CPU over [`MEASURE`], as a share of one core, in one run.
fn one(tracer: &Path, workload: &Path, dir: &Path, tui: bool) -> Result<f64> {
    check_interrupted()?;
    // A server of its own per run (its socket in a directory of its own).
    fs::create_dir_all(dir)?;
    let sock = dir.join("tmux.sock");
    let script = format!(
        "{} --threads --interval 1 --duration {} {} -- {} pool {THREADS} {HZ} {}; exec sleep 600",
        tracer.display(),
        RUN.as_secs(),
        if tui { "--tui" } else { "" },
        workload.display(),
        RUN.as_secs() + 5
    );
    let ok = tmux(&sock)
        .args([
            "new-session",
            "-d",
            "-s",
            "b",
            "-x",
            "200",
            "-y",
            "60",
            "sh",
            "-c",
            &script,
        ])
        .status()?
        .success();
    if !ok {
        bail!("tmux did not start");
    }
    let result = (|| {
        let started = Instant::now();
        let shown = tmux(&sock)
            .args(["display-message", "-p", "-t", "b", "#{pane_pid}"])
            .output()?;
        let shell: i32 = String::from_utf8_lossy(&shown.stdout)
            .trim()
            .parse()
            .context("the tmux pane's pid")?;
        let pid = loop {
            if let Some(p) = tracer_pid(shell) {
                break p;
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("tracer did not start in tmux");
            }
            thread::sleep(Duration::from_millis(20));
        };
        thread::sleep(WARM.saturating_sub(started.elapsed()));
        let t0 = cpu_ticks(pid)?;
        let from = Instant::now();
        thread::sleep(MEASURE);
        let ticks = cpu_ticks(pid)?.saturating_sub(t0);
        let cpu = ticks as f64 / ticks_per_s() / from.elapsed().as_secs_f64();
        // Let the run end by its --duration.
        while fs::metadata(format!("/proc/{pid}")).is_ok() {
            if started.elapsed() > RUN + Duration::from_secs(30) {
                bail!("tracer did not end after its --duration");
            }
            thread::sleep(Duration::from_millis(100));
        }
        Ok(cpu)
    })();
    let _ = tmux(&sock).arg("kill-server").status();
    result
}

pub fn markdown(pairs: &[Pair]) -> String {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            0.0
        } else if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let mut s = format!(
        "tracer `--threads --interval 1` on {THREADS} threads ({HZ} getppid/s each), in a 200x60 tmux terminal; \
         CPU (utime + stime) from {} s to {} s of a {} s run, as % of one core.\n\n\
         | pair | with --tui | text reports | the view's own |\n|---|---|---|---|\n",
        WARM.as_secs(),
        (WARM + MEASURE).as_secs(),
        RUN.as_secs()
    );
    for (i, p) in pairs.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {:.2}% | {:.2}% | {:+.2}% |\n",
            i + 1,
            100.0 * p.tui,
            100.0 * p.text,
            100.0 * (p.tui - p.text)
        ));
    }
    s.push_str(&format!(
        "| median | {:.2}% | {:.2}% | {:+.2}% |\n\nTarget: the view's own at most 2% of a core.\n",
        100.0 * median(pairs.iter().map(|p| p.tui).collect()),
        100.0 * median(pairs.iter().map(|p| p.text).collect()),
        100.0 * median(pairs.iter().map(|p| p.tui - p.text).collect())
    ));
    s
}
