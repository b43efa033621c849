//! `cargo xtask <command>`: everything that is more than one cargo invocation.
mod bench;
mod build;
mod fuzz;
mod matrix;
mod setup;

use std::{ffi::OsString, process::ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand, error::ErrorKind};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "tracer's build, setup, run and test driver"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what a fresh machine lacks to build the eBPF side (idempotent).
    Setup,
    /// Build the eBPF object (bpfel-unknown-none, nightly, -Z build-std=core).
    BuildEbpf,
    /// Build the eBPF object, then tracer (release) with it embedded.
    Build,
    /// Build, then run tracer with the given arguments (through sudo if not root).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Build, then run every test: unit tests and the eBPF integration tests (as root),
    /// then fuzz the decoders of kernel records for 20 s per fuzz target.
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Run the tests on each of Debian's kernels from 5.10 to 7.3, booted under qemu (as
    /// root; fetches the kernels into a cache, about 20 minutes with software emulation).
    Matrix(matrix::Opts),
    /// Build, then benchmark tracer against its floor, strace, perf trace and bpftrace, and
    /// write bench/RESULTS.md (as root; takes several minutes, --quick about two).
    Bench(bench::Opts),
    /// Fuzz the decoders of kernel records with libFuzzer, each target in turn (cargo-fuzz,
    /// nightly; installs cargo-fuzz if missing); fails on any crash, naming the input that
    /// caused it.
    Fuzz(fuzz::Opts),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, or no command: the help.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            // One line: clap's first, without its usage and hint lines.
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or_default();
            eprintln!("xtask: {}", first.strip_prefix("error: ").unwrap_or(first));
            return ExitCode::from(2);
        }
    };
    let r: Result<()> = match cli.cmd {
        Cmd::Setup => setup::ensure(),
        Cmd::BuildEbpf => setup::ensure().and_then(|_| build::ebpf()),
        Cmd::Build => build::all(),
        Cmd::Run { args } => build::all().and_then(|_| build::run_tracer(&args)),
        // CI runs `cargo xtask test`: it fuzzes the decoders on every change (20 s for each
        // of the two targets).
        Cmd::Test { args } => build::test(&args).and_then(|()| {
            fuzz::run(&fuzz::Opts {
                seconds: 20,
                runs: None,
            })
        }),
        Cmd::Bench(opts) => bench::run(opts),
        Cmd::Matrix(opts) => matrix::run(opts),
        Cmd::Fuzz(opts) => fuzz::run(&opts),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
