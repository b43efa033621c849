//! `cargo xtask fuzz`: runs the libFuzzer target of the ring-buffer decoder (`fuzz/`) with
//! cargo-fuzz on nightly, from a corpus seeded with one valid record of each kind, and says
//! how many inputs it ran; any crash fails, naming the input libFuzzer saved.
use std::{fs, path::Path, time::Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use tracer_common::event::{
    Crash, EventData, Exec, Exit, Fork, Header, Kind, OomKill, RawEvent, Signal, Stall, Taken,
};

use crate::{
    build::{cargo, workspace_root},
    setup::{self, quiet_ok},
};

const TARGET: &str = "decode";
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// Longest input tried: more than the largest record (160 bytes), so that records followed
/// by padding are tried too.
const MAX_LEN: usize = 256;

#[derive(Args)]
pub struct Opts {
    /// Fuzz for this many seconds.
    #[arg(long, default_value_t = 60, conflicts_with = "runs", value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
    /// Fuzz this many inputs instead.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
}

pub fn run(opts: &Opts) -> Result<()> {
    setup::ensure_nightly()?;
    ensure_cargo_fuzz()?;
    let fuzz_dir = workspace_root().join("fuzz");
    let corpus = fuzz_dir.join("corpus").join(TARGET);
    write_seeds(&corpus)?;
    eprintln!("xtask fuzz: building the fuzz target {TARGET} (nightly, AddressSanitizer)");
    let fuzz = |sub: &str| {
        let mut c = cargo(Some("nightly"));
        c.args(["fuzz", sub, "--debug-assertions", TARGET]);
        c
    };
    setup::run(&mut fuzz("build"))?;
    let limit = match opts.runs {
        Some(n) => format!("-runs={n}"),
        None => format!("-max_total_time={}", opts.seconds),
    };
    eprintln!("xtask fuzz: fuzzing {TARGET} ({limit})");
    let start = Instant::now();
    let out = fuzz("run")
        .arg(&corpus)
        .args([
            "--",
            &limit,
            &format!("-max_len={MAX_LEN}"),
            "-print_final_stats=1",
        ])
        .output()
        .context("cannot run cargo fuzz")?;
    let wall = start.elapsed().as_secs_f64();
    let artifacts = fuzz_dir.join("artifacts");
    fs::create_dir_all(&artifacts)
        .with_context(|| format!("cannot create {}", artifacts.display()))?;
    let log = artifacts.join(format!("{TARGET}.log"));
    fs::write(&log, [&out.stderr[..], &out.stdout[..]].concat())
        .with_context(|| format!("cannot write {}", log.display()))?;
    let text = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        // A Rust panic is "thread ... panicked at FILE:LINE:COL:" and the message on the
        // next line; a sanitizer's report starts with "==PID==ERROR:".
        let why = match lines.iter().position(|l| l.contains(" panicked at ")) {
            Some(i) => format!("{} {}", lines[i], lines.get(i + 1).unwrap_or(&"")),
            None => lines
                .iter()
                .find(|l| l.contains("ERROR:"))
                .map_or(out.status.to_string(), |l| l.to_string()),
        };
        let input = lines
            .iter()
            .rev()
            .find_map(|l| l.split_once("Test unit written to "))
            .map(|(_, path)| path.trim());
        match input {
            Some(path) => bail!(
                "fuzz target {TARGET} crashed: {why}; input saved in {path}; libFuzzer's output in {}",
                log.display()
            ),
            None => bail!(
                "cargo fuzz run failed: {why}; libFuzzer's output in {}",
                log.display()
            ),
        }
    }
    let stat = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .with_context(|| format!("no {name} in libFuzzer's output ({})", log.display()))
    };
    let runs = stat("stat::number_of_executed_units:")?;
    let per_s = stat("stat::average_exec_per_sec:")?;
    println!("fuzz {TARGET}: {runs} executions in {wall:.1} s, {per_s} exec/s, no crash");
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<()> {
    if quiet_ok(cargo(None).args(["fuzz", "--version"])) {
        return Ok(());
    }
    eprintln!("xtask fuzz: installing cargo-fuzz {CARGO_FUZZ_VERSION} with cargo install --locked");
    setup::run(cargo(None).args([
        "install",
        "--locked",
        &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
    ]))
}

/// Writes one valid record of each kind into the corpus (the same files every time; the
/// inputs libFuzzer adds beside them are kept between runs).
fn write_seeds(corpus: &Path) -> Result<()> {
    fs::create_dir_all(corpus).with_context(|| format!("cannot create {}", corpus.display()))?;
    let record = |kind: Kind, data| RawEvent {
        header: Header {
            kind: kind as u32,
            slot: 0,
            ts_ns: 1_500_000_000,
            tid: 1001,
            tgid: 1000,
        },
        data,
    };
    let seeds = [
        (
            "fork",
            record(
                Kind::Fork,
                EventData::Fork(Fork {
                    child_tid: 1002,
                    child_tgid: 1002,
                    followed: 1,
                    _pad: 0,
                    child_start_ns: 5_000_000_000,
                }),
            ),
        ),
        (
            "exec",
            record(
                Kind::Exec,
                EventData::Exec(Exec {
                    old_tid: 1001,
                    _pad: 0,
                    comm: *b"tracer-workload\0",
                }),
            ),
        ),
        (
            "exit",
            record(
                Kind::Exit,
                EventData::Exit(Exit {
                    exit_code: 3 << 8,
                    group_dead: 1,
                    calls: 100,
                    errors: 1,
                    start_ns: 123_000_000,
                }),
            ),
        ),
        (
            "signal",
            record(
                Kind::Signal,
                EventData::Signal(Signal {
                    sig: 15,
                    sender_tgid: 1,
                    result: 0,
                    from_kernel: 0,
                }),
            ),
        ),
        (
            "oom-kill",
            record(Kind::OomKill, EventData::OomKill(OomKill::example(b"app"))),
        ),
        (
            "taken",
            record(
                Kind::Taken,
                EventData::Taken(Taken {
                    how: tracer_common::target_flags::BY_COMM,
                    cause: tracer_common::event::taken_cause::NAME,
                    start_ns: 7_000_000_000,
                }),
            ),
        ),
        (
            "stall",
            record(
                Kind::Stall,
                EventData::Stall(Stall {
                    busy_ns: 2_000_000_000,
                    on_cpu_ns: 1_990_000_000,
                    runq_ns: 4_000_000,
                    calls: 3,
                    slow_nr: 0,
                    slow_ns: 20_000,
                    comm: *b"node\0\0\0\0\0\0\0\0\0\0\0\0",
                }),
            ),
        ),
        (
            "crash",
            record(
                Kind::Crash,
                EventData::Crash(Crash {
                    sig: 11,
                    code: 2,
                    addr: 0x7f00_0000_1000,
                    ip: 0x5555_0000_1234,
                    sender_tgid: 1000,
                    from_kernel: 1,
                    comm: *b"tracer-workload\0",
                }),
            ),
        ),
    ];
    for (name, ev) in seeds {
        let (bytes, len) = ev.encode();
        let path = corpus.join(format!("seed-{name}"));
        fs::write(&path, &bytes[..len])
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
