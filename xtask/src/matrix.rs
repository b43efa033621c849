//! `cargo xtask matrix` (issue 11): tracer's tests, those that load the eBPF programs
//! included, run on each of Debian's kernels from 5.10 to 7.3, booted under qemu. It fetches
//! the kernel packages with a private apt configuration (cached outside the repository),
//! builds one initramfs with the test binaries and tracer, boots each kernel (KVM where it
//! works, else software emulation), and prints a table of kernels by checks, with the
//! reason of each failure. Any kernel warning or oops in a guest fails that kernel.
mod guest;
mod kernels;
mod report;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};

use crate::{
    build,
    setup::{self, apt_install},
};
use guest::{Accel, TestBinary};

/// The kernels production runs, from Debian's archive: a suite (its newest kernel) or
/// SUITE=PACKAGE. bullseye 5.10, bookworm 6.1, bookworm-backports 6.12, then 6.16.3 and
/// 6.18.15 pinned, and the newest of trixie-backports (7.3 when this was written).
pub const KERNELS: &[&str] = &[
    "bullseye",
    "bookworm",
    "bookworm-backports",
    "trixie-backports=linux-image-6.16.3+deb13-amd64",
    "trixie-backports=linux-image-6.18.15+deb13-amd64",
    "trixie-backports",
];

#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Kernels to boot (comma-separated): a Debian suite, for its newest kernel, or
    /// SUITE=PACKAGE [default: the six kernels from 5.10 to 7.3].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    kernels: Vec<String>,
    /// Where the kernel packages, the initramfs and the guests' logs are kept.
    #[arg(long, value_name = "DIR", default_value = "/var/tmp/tracer-kmatrix")]
    cache: PathBuf,
    /// Guests booted at once [default: the host's CPUs; each emulated guest uses one].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// Seconds a guest may take, boot to power-off.
    #[arg(long, value_name = "SECS", default_value_t = 1500)]
    timeout: u64,
    /// Arguments for every test binary in the guests (a name filter, --exact, --skip ...).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    test_args: Vec<String>,
}

/// Test binaries that run on the host only, and why.
const HOST_ONLY: &[(&str, &str)] = &[
    (
        "prometheus",
        "it runs Debian's Prometheus server, which the guests do not have; tests/metrics.rs checks the metrics endpoint in them",
    ),
    (
        "otlp",
        "its OTLP receiver is a Python program (OpenTelemetry's protobuf definitions), which the guests do not have",
    ),
    (
        "deploy",
        "it runs kubernetes-validate, promtool, systemd-analyze and setpriv, which the guests do not have",
    ),
    (
        "jit",
        "in the guests no JIT frame of node was named from its perf map, though node wrote the function there (not understood yet: NOTES.md); the frame-pointer stacks of tests/stack.rs run in them",
    ),
    (
        "tui",
        "it runs tracer --tui in a terminal that tmux provides, and the guests have no tmux; the view's layout is checked by the unit tests in them",
    ),
];

/// Debian packages the matrix needs on the host.
const HOST_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("cpio", "cpio"),
    ("strace", "strace"),
    ("objcopy", "binutils"),
];

pub fn run(opts: Opts) -> Result<()> {
    let start = Instant::now();
    ensure_host_packages()?;
    setup::ensure()?;
    build::ebpf()?;
    let (tests, bins) = build_tests()?;
    let specs: Vec<String> = if opts.kernels.is_empty() {
        KERNELS.iter().map(|s| s.to_string()).collect()
    } else {
        opts.kernels.clone()
    };
    std::fs::create_dir_all(&opts.cache)
        .with_context(|| format!("cannot create {}", opts.cache.display()))?;
    let kernels = kernels::fetch(&opts.cache, &specs)?;
    let initramfs = opts.cache.join("initramfs.cpio.gz");
    eprintln!("xtask matrix: building the initramfs");
    guest::initramfs(&opts.cache, &initramfs, &tests, &bins, &opts.test_args)?;
    let accel = guest::pick_accel(&kernels[0].vmlinuz, &initramfs);
    let logs = opts.cache.join("logs");
    std::fs::create_dir_all(&logs)?;
    let jobs = opts
        .jobs
        .map(|j| j as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(kernels.len());
    eprintln!(
        "xtask matrix: booting {} kernels ({}, {jobs} at once), {} test binaries each",
        kernels.len(),
        match accel {
            Accel::Kvm => "KVM",
            Accel::Tcg => "software emulation: KVM does not run guests here",
        },
        tests.len()
    );
    let names: Vec<(String, bool)> = tests
        .iter()
        .map(|t| (t.name.clone(), t.name == UNIT))
        .collect();
    let queue = Mutex::new(kernels.iter().collect::<Vec<_>>());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let Some(k) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    eprintln!("xtask matrix: booting {}", k.name);
                    let timeout = Duration::from_secs(opts.timeout);
                    let r = guest::boot(k, &initramfs, accel, timeout, &logs);
                    done.lock().unwrap().push((k.name.clone(), r));
                }
            });
        }
    });
    let mut results = Vec::new();
    let mut runs = done.into_inner().unwrap();
    // In the order asked for.
    runs.sort_by_key(|(name, _)| kernels.iter().position(|k| &k.name == name));
    for (name, run) in runs {
        let run = run?;
        let r = report::analyze(&run.console, &run.serial, &names);
        let failed = r.failures().count();
        eprintln!(
            "xtask matrix: {name} ({} {}): {} checks, {failed} failed, {:.0} s{}",
            run.kernel.suite,
            run.kernel.package,
            r.checks.len(),
            run.seconds,
            if run.boots > 1 { ", booted twice" } else { "" }
        );
        let title = format!("{} ({})", short_release(&name), run.kernel.suite);
        results.push((title, r));
    }
    let mut md = format!(
        "# Kernel matrix\n\nTracer's tests on each kernel, booted under qemu ({}); \
         made by `cargo xtask matrix` in {:.0} s. Logs: {}.\n\n",
        match accel {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        },
        start.elapsed().as_secs_f64(),
        logs.display()
    );
    md.push_str(&report::table(&results));
    std::fs::write(opts.cache.join("results.md"), &md)?;
    println!("{md}");
    let failed: usize = results.iter().map(|(_, r)| r.failures().count()).sum();
    if failed > 0 {
        bail!("{failed} checks failed; the table above says where and why");
    }
    Ok(())
}

/// `5.10.0-32-amd64` -> `5.10.0-32`, `6.16.3+deb13-amd64` -> `6.16.3`.
fn short_release(name: &str) -> &str {
    let name = name.strip_suffix("-amd64").unwrap_or(name);
    name.split('+').next().unwrap_or(name)
}

fn ensure_host_packages() -> Result<()> {
    setup::ensure_commands(HOST_PACKAGES, "xtask matrix", "for the guests")?;
    // A static busybox: the guest has no other shell, and no libraries for it.
    if !Path::new("/bin/busybox").exists()
        || Command::new("ldd")
            .arg("/bin/busybox")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        eprintln!("xtask matrix: installing busybox-static with apt-get (the guests' shell)");
        apt_install(&["busybox-static"], false)?;
    }
    Ok(())
}

/// A shell running `script` with `args` as $1, $2, ... (never spliced into the script).
fn sh(script: &str, args: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).arg("sh").args(args);
    c
}

/// The name of the unit tests' binary (tracer's own `src/`): reported as one check.
const UNIT: &str = "unit";

/// Builds tracer's test binaries (release, as `cargo xtask test` runs them) and returns
/// them, with the programs they run (tracer, tracer-workload).
fn build_tests() -> Result<(Vec<TestBinary>, Vec<PathBuf>)> {
    eprintln!("xtask matrix: building the test binaries");
    let out = build::cargo(None)
        .args([
            "test",
            "--release",
            "-p",
            "tracer",
            "--no-run",
            "--message-format=json",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("building the tests failed");
    }
    let mut tests = Vec::new();
    let mut bins = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(exe) = m["executable"].as_str() else {
            continue;
        };
        let kind = m["target"]["kind"][0].as_str().unwrap_or_default();
        let path = PathBuf::from(exe);
        if m["profile"]["test"] == true {
            // The unit tests are the library's (the binary has none of its own).
            let name = if kind == "lib" {
                UNIT.to_string()
            } else {
                m["target"]["name"].as_str().unwrap_or_default().to_string()
            };
            if let Some((_, why)) = HOST_ONLY.iter().find(|(n, _)| *n == name) {
                eprintln!("xtask matrix: {name} runs on the host only: {why}");
                continue;
            }
            tests.push(TestBinary { name, path });
        } else if kind == "bin" {
            bins.push(path);
        }
    }
    if tests.is_empty() || bins.len() < 2 {
        return Err(anyhow!("cargo listed no test binaries"));
    }
    // The unit tests first: they check this kernel's BTF before anything loads.
    tests.sort_by_key(|t| (t.name != UNIT, t.name.clone()));
    Ok((tests, bins))
}
