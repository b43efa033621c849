//! Building the eBPF object and tracer, and running tracer and the tests.
use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Result;

use crate::setup::{self, is_root, run};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A cargo command for the given toolchain, free of the variables the outer `cargo xtask`
/// set (they would point the inner build at the wrong rustc).
pub fn cargo(toolchain: Option<&str>) -> Command {
    let mut c = Command::new("cargo");
    if let Some(t) = toolchain {
        c.arg(format!("+{t}"));
    }
    for var in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        c.env_remove(var);
    }
    c.current_dir(workspace_root());
    c
}

pub fn ebpf() -> Result<()> {
    eprintln!("xtask: building the eBPF object");
    run(cargo(Some("nightly")).args([
        "build",
        "--release",
        "-Z",
        "build-std=core",
        "--target",
        "bpfel-unknown-none",
        "-p",
        "tracer-ebpf",
    ]))
}

pub fn all() -> Result<()> {
    setup::ensure()?;
    ebpf()?;
    run(cargo(None).args(["build", "--release", "-p", "tracer", "--bins"]))
}

pub fn tracer_bin() -> PathBuf {
    workspace_root().join("target/release/tracer")
}

/// Runs tracer, through sudo when not root (loading eBPF programs needs privileges).
pub fn run_tracer(args: &[OsString]) -> Result<()> {
    let mut c = if is_root() {
        Command::new(tracer_bin())
    } else {
        let mut c = Command::new("sudo");
        c.arg(tracer_bin());
        c
    };
    // `cargo run` put its own directories in LD_LIBRARY_PATH; a command tracer launches
    // would inherit them, and its loader would search them (failed opens in the report).
    let root = workspace_root();
    if let Some(v) = std::env::var_os("LD_LIBRARY_PATH") {
        let kept: Vec<PathBuf> = std::env::split_paths(&v)
            .filter(|p| {
                !p.starts_with(&root) && !p.components().any(|c| c.as_os_str() == ".rustup")
            })
            .collect();
        if kept.is_empty() {
            c.env_remove("LD_LIBRARY_PATH");
        } else {
            c.env("LD_LIBRARY_PATH", std::env::join_paths(kept)?);
        }
    }
    let status = c.args(args).status()?;
    std::process::exit(status.code().unwrap_or(1));
}

/// tracer without its default features (`otlp`) must build and lint clean too: nothing
/// else compiles that configuration. Clippy checks it (a check build and the lints).
pub fn check_no_default_features() -> Result<()> {
    eprintln!("xtask: checking tracer without default features");
    run(cargo(None).args([
        "clippy",
        "--release",
        "-p",
        "tracer",
        "--no-default-features",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

/// Every test of the workspace. The integration tests load eBPF programs, so the test
/// binaries run as root (through `sudo -E` when needed).
pub fn test(args: &[OsString]) -> Result<()> {
    setup::ensure()?;
    setup::ensure_test_packages()?;
    ebpf()?;
    check_no_default_features()?;
    let mut c = cargo(None);
    // Every test must run: one that would skip fails instead.
    // Release: the binaries users run, and the ones the kernel matrix boots with.
    c.args([
        "test",
        "--release",
        "--workspace",
        "--exclude",
        "tracer-ebpf",
    ])
    .args(args)
    .env("TRACER_TEST_NO_SKIP", "1");
    if !is_root() {
        c.env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER", "sudo -E");
    }
    run(&mut c)
}
