//! `cargo xtask fuzz`: runs the libFuzzer targets of the decoders of kernel records
//! (`fuzz/`) with cargo-fuzz on nightly, one after the other, each from a corpus seeded with
//! valid inputs (`seeds.rs`), and says how many inputs each ran; any crash fails, naming
//! the input libFuzzer saved.
mod seeds;

use std::{fs, path::Path, process::Command, time::Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{
    build::{cargo, workspace_root},
    setup::{self, quiet_ok},
};

/// A libFuzzer target of `fuzz/`.
struct Target {
    name: &'static str,
    /// Longest input tried.
    max_len: usize,
    seeds: fn() -> Vec<(&'static str, Vec<u8>)>,
    /// Built with AddressSanitizer, which checks the memory accesses of unsafe code. A
    /// target that reaches only safe Rust is built without it (panics and debug assertions
    /// are caught all the same) and runs many times faster, into its own target directory
    /// (another build's flags would rebuild every dependency each time).
    asan: bool,
    /// The fuzz crate's feature that the target requires (its dependencies).
    feature: Option<&'static str>,
}

const TARGETS: &[Target] = &[
    // The ring-buffer records (`event::decode`) and the call stream's (`CallRecord::decode`):
    // more than the largest event (160 bytes), so that records followed by padding are
    // tried too.
    Target {
        name: "decode",
        max_len: 256,
        seeds: seeds::decode,
        asan: true,
        feature: None,
    },
    // strace mode's decoding of call records into lines and JSON, and `-y`'s parsers: more
    // than the largest call record (648 bytes), and room for `/proc/net` lines. Safe Rust
    // but for `CallRecord::decode` (`decode` fuzzes it under AddressSanitizer, with the same
    // bytes) and libc's `localtime_r` (which the sanitizer does not instrument); its many
    // small allocations made it 7 times slower under the sanitizer (bench/FUZZ.md).
    Target {
        name: "stream",
        max_len: 1024,
        seeds: seeds::stream,
        asan: false,
        feature: Some("stream"),
    },
];
const CARGO_FUZZ_VERSION: &str = "0.13.2";

#[derive(Args)]
pub struct Opts {
    /// Fuzz each target for this many seconds.
    #[arg(long, default_value_t = 60, conflicts_with = "runs", value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
    /// Fuzz this many inputs of each target instead.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
}

pub fn run(opts: &Opts) -> Result<()> {
    setup::ensure_nightly()?;
    ensure_cargo_fuzz()?;
    let fuzz_dir = workspace_root().join("fuzz");
    for t in TARGETS {
        let with = if t.asan {
            "AddressSanitizer"
        } else {
            "no sanitizer"
        };
        eprintln!(
            "xtask fuzz: building the fuzz target {} (nightly, {with})",
            t.name
        );
        setup::run(&mut cargo_fuzz("build", &fuzz_dir, t))?;
    }
    let limit = match opts.runs {
        Some(n) => format!("-runs={n}"),
        None => format!("-max_total_time={}", opts.seconds),
    };
    let mut crashed = Vec::new();
    for t in TARGETS {
        match fuzz(&fuzz_dir, t, &limit) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                println!("fuzz {}: {e:#}", t.name);
                crashed.push(t.name);
            }
        }
    }
    if !crashed.is_empty() {
        bail!("fuzzing failed: {} (said above)", crashed.join(", "));
    }
    Ok(())
}

/// Runs one target from its seeded corpus; its line, or why it failed.
fn fuzz(fuzz_dir: &Path, t: &Target, limit: &str) -> Result<String> {
    let name = t.name;
    let corpus = fuzz_dir.join("corpus").join(name);
    write_seeds(&corpus, (t.seeds)())?;
    eprintln!("xtask fuzz: fuzzing {name} ({limit})");
    let start = Instant::now();
    let out = cargo_fuzz("run", fuzz_dir, t)
        .arg(&corpus)
        .args([
            "--",
            limit,
            &format!("-max_len={}", t.max_len),
            "-print_final_stats=1",
        ])
        .output()
        .context("cannot run cargo fuzz")?;
    let wall = start.elapsed().as_secs_f64();
    let artifacts = fuzz_dir.join("artifacts");
    fs::create_dir_all(&artifacts)
        .with_context(|| format!("cannot create {}", artifacts.display()))?;
    let log = artifacts.join(format!("{name}.log"));
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
                "crashed: {why}; input saved in {path}; libFuzzer's output in {}",
                log.display()
            ),
            None => bail!(
                "cargo fuzz run failed: {why}; libFuzzer's output in {}",
                log.display()
            ),
        }
    }
    let stat = |stat: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(stat)?.trim().parse::<u64>().ok())
            .with_context(|| format!("no {stat} in libFuzzer's output ({})", log.display()))
    };
    let runs = stat("stat::number_of_executed_units:")?;
    let per_s = stat("stat::average_exec_per_sec:")?;
    Ok(format!(
        "fuzz {name}: {runs} executions in {wall:.1} s, {per_s} exec/s, no crash"
    ))
}

/// `cargo fuzz build` or `run` of a target, with debug assertions.
fn cargo_fuzz(sub: &str, fuzz_dir: &Path, t: &Target) -> Command {
    let mut c = cargo(Some("nightly"));
    c.args(["fuzz", sub, "--debug-assertions"]);
    if !t.asan {
        c.args(["--sanitizer", "none", "--target-dir"])
            .arg(fuzz_dir.join("target").join("no-sanitizer"));
    }
    if let Some(f) = t.feature {
        c.args(["--features", f]);
    }
    c.arg(t.name);
    c
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

/// Writes the seeds into the corpus (the same files every time; the inputs libFuzzer adds
/// beside them are kept between runs).
fn write_seeds(corpus: &Path, seeds: Vec<(&str, Vec<u8>)>) -> Result<()> {
    fs::create_dir_all(corpus).with_context(|| format!("cannot create {}", corpus.display()))?;
    for (name, bytes) in seeds {
        let path = corpus.join(format!("seed-{name}"));
        fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
