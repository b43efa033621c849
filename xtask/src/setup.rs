//! What a fresh machine needs to build tracer's eBPF side (see shared TOOLCHAIN notes):
//! nightly `rust-src`, Debian's `llvm-22-dev`, and `bpf-linker` 0.13 built against LLVM 22.
//! Each step checks first and says what it does; running it twice does nothing the second
//! time.
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_MAJOR: &str = "22";

pub fn ensure() -> Result<()> {
    ensure_nightly_rust_src()?;
    ensure_llvm()?;
    ensure_bpf_linker()?;
    Ok(())
}

/// Runs a command, failing with its name if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

pub fn quiet_ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ensure_nightly_rust_src() -> Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        "nightly",
    ]))
    .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    ensure_nightly()?;
    eprintln!("xtask setup: adding rust-src to the nightly toolchain (for -Z build-std=core)");
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

/// The nightly toolchain (the eBPF build and the fuzz targets need it).
pub fn ensure_nightly() -> Result<()> {
    if quiet_ok(Command::new("rustc").arg("+nightly").arg("--version")) {
        return Ok(());
    }
    eprintln!("xtask setup: installing the nightly toolchain");
    run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
}

fn llvm_prefix() -> String {
    format!("/usr/lib/llvm-{LLVM_MAJOR}")
}

fn ensure_llvm() -> Result<()> {
    let config = format!("{}/bin/llvm-config", llvm_prefix());
    if quiet_ok(Command::new(&config).arg("--version")) {
        return Ok(());
    }
    let pkg = format!("llvm-{LLVM_MAJOR}-dev");
    eprintln!(
        "xtask setup: installing {pkg} with apt-get (LLVM {LLVM_MAJOR} matches the nightly's LLVM)"
    );
    apt_install(&[&pkg], true)
}

/// Real programs the tests run beside tracer, from Debian's packages: Prometheus (it
/// scrapes tracer's metrics endpoint in tests/prometheus.rs; promtool checks deploy/),
/// systemd-analyze and setpriv (tests/deploy.rs), tmux (the terminal tests/tui.rs runs
/// `tracer --tui` in), node (the node servers of tests/loops.rs), Python's venv for the
/// tools below.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("node", "nodejs"),
    ("prometheus", "prometheus"),
    ("promtool", "prometheus"),
    ("systemd-analyze", "systemd"),
    ("setpriv", "util-linux"),
    ("tmux", "tmux"),
];

/// Python tools the tests run, from PyPI, pinned, in a virtual environment of their own
/// (Debian's python3): kubernetes-validate checks deploy/'s manifests against the
/// Kubernetes schemas it carries; opentelemetry-proto (OpenTelemetry's own protobuf
/// definitions) decodes tracer's OTLP pushes in tests/otlp.rs.
const PYTHON_TOOLS: &str = "/var/tmp/tracer-python";
const PYTHON_PACKAGES: &[&str] = &[
    "kubernetes-validate==1.37.0",
    "opentelemetry-proto==1.45.2",
    "protobuf==7.36.2",
];

pub fn ensure_test_packages() -> Result<()> {
    ensure_commands(TEST_PACKAGES, "xtask test", "for the tests")?;
    if !quiet_ok(Command::new("/usr/bin/python3").args(["-c", "import ensurepip, venv"])) {
        eprintln!("xtask test: installing python3-venv with apt-get (for the tests' tools)");
        apt_install(&["python3-venv"], false)?;
    }
    let pip = format!("{PYTHON_TOOLS}/bin/pip");
    let stamp = format!("{PYTHON_TOOLS}/installed.txt");
    let want = PYTHON_PACKAGES.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        return Ok(());
    }
    eprintln!(
        "xtask test: installing {} from PyPI into {PYTHON_TOOLS} (for the tests)",
        PYTHON_PACKAGES.join(", ")
    );
    run(Command::new("/usr/bin/python3").args(["-m", "venv", PYTHON_TOOLS]))?;
    run(Command::new(&pip)
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PYTHON_PACKAGES))?;
    std::fs::write(&stamp, want).with_context(|| format!("cannot write {stamp}"))
}

/// Installs the package of each (command, package) whose command is not in PATH, saying
/// so as `who`, `why`.
pub fn ensure_commands(wanted: &[(&str, &str)], who: &str, why: &str) -> Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(cmd, _)| !installed(cmd))
        .map(|&(_, pkg)| pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "{who}: installing {} with apt-get ({why})",
        missing.join(", ")
    );
    apt_install(&missing, false)
}

/// Whether `cmd` is a command in PATH.
pub fn installed(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", "command -v \"$1\" >/dev/null", "sh", cmd])
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs Debian packages with apt-get (through sudo when not root), after an update;
/// with their recommended packages or not.
pub fn apt_install(packages: &[&str], recommends: bool) -> Result<()> {
    let sudo = !is_root();
    let apt = |args: &[&str]| {
        let mut c = if sudo {
            Command::new("sudo")
        } else {
            Command::new("apt-get")
        };
        if sudo {
            c.arg("apt-get");
        }
        c.args(["-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run(&mut apt(&["update", "-qq"]))?;
    let mut install = apt(&["install", "-y", "-qq"]);
    if !recommends {
        install.arg("--no-install-recommends");
    }
    run(install.args(packages))
}

fn ensure_bpf_linker() -> Result<()> {
    if let Some(v) = output(Command::new("bpf-linker").arg("--version"))
        && v.contains(BPF_LINKER_VERSION)
    {
        return Ok(());
    }
    eprintln!(
        "xtask setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM {LLVM_MAJOR} (about a minute)"
    );
    run(Command::new("cargo")
        .args([
            "install",
            "--locked",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
        ])
        .args([
            "--no-default-features",
            "--features",
            &format!("llvm-{LLVM_MAJOR}"),
        ])
        .env("LLVM_PREFIX", llvm_prefix()))
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}
