//! The guest: one initramfs (busybox, the test binaries and tracer at the paths they were
//! built at, the host tools the tests run, their shared libraries and an ld.so.cache) and
//! the qemu runs that boot it on each kernel.
use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};

use super::{kernels::Kernel, sh};
use crate::setup::run;

const INIT: &str = include_str!("init.sh");

/// Host programs the tests run in the guest (busybox provides the rest: sh, sleep, mount).
/// The host's own, so that what they do matches what the same tests do on the host; node
/// for the event-loop tests (tests/loops.rs; about 100 MB, 30 in the compressed image).
pub const HOST_TOOLS: &[&str] = &["strace", "dd", "setpriv", "unshare", "timeout", "node"];

/// A test binary: its name in the results, and its path (the same in the guest).
pub struct TestBinary {
    pub name: String,
    pub path: PathBuf,
}

/// Builds the initramfs at `out` from a fresh tree under `work`.
pub fn initramfs(
    work: &Path,
    out: &Path,
    tests: &[TestBinary],
    bins: &[PathBuf],
    test_args: &[String],
) -> Result<()> {
    let root = work.join("initramfs-root");
    let _ = fs::remove_dir_all(&root);
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).context("busybox-static is needed")?;
    let mut elves: Vec<PathBuf> = Vec::new();
    for p in tests.iter().map(|t| &t.path).chain(bins) {
        // Without debug information: the same code, a tenth of the size.
        place(&root, p, true)?;
        elves.push(p.clone());
    }
    for tool in HOST_TOOLS {
        let path = which(tool)?;
        fs::copy(&path, root.join("usr/bin").join(tool))?;
        elves.push(path);
    }
    let mut dirs: Vec<String> = Vec::new();
    for lib in shared_libraries(&elves)? {
        place(&root, &lib, false)?;
        if let Some(d) = lib.parent().map(|d| d.display().to_string())
            && !dirs.contains(&d)
        {
            dirs.push(d);
        }
    }
    // Without ld.so.cache the loader probes glibc-hwcaps directories: failed opens that
    // would show in the tests' syscall counts.
    fs::write(root.join("etc/ld.so.conf"), dirs.join("\n") + "\n")?;
    run(Command::new("ldconfig").arg("-r").arg(&root))?;
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    let list: String = tests
        .iter()
        .map(|t| format!("{} {}\n", t.name, t.path.display()))
        .collect();
    fs::write(root.join("tests.list"), list)?;
    fs::write(root.join("tests.args"), test_args.join(" ") + "\n")?;
    fs::write(root.join("init"), INIT)?;
    fs::set_permissions(root.join("init"), fs::Permissions::from_mode(0o755))?;
    let pack = "cd \"$1\" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet | gzip -1 > \"$2\"";
    if !sh(pack, &[root.as_os_str(), out.as_os_str()])
        .status()?
        .success()
    {
        bail!("cannot pack the initramfs");
    }
    fs::remove_dir_all(&root)?;
    Ok(())
}

/// Copies `path` to the same path under `root` (stripped of debug information, or as is).
fn place(root: &Path, path: &Path, strip: bool) -> Result<()> {
    let dest = root.join(path.strip_prefix("/").unwrap_or(path));
    fs::create_dir_all(dest.parent().unwrap())?;
    if strip {
        run(Command::new("objcopy")
            .arg("--strip-debug")
            .arg(path)
            .arg(&dest))
    } else {
        fs::copy(path, &dest)
            .map(|_| ())
            .with_context(|| format!("cannot copy {}", path.display()))
    }
}

fn which(tool: &str) -> Result<PathBuf> {
    let out = sh("command -v \"$1\"", &[tool.as_ref()]).output()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if p.is_empty() {
        bail!("{tool} is not installed");
    }
    Ok(fs::canonicalize(p)?)
}

/// Every shared library (with the loader) that `ldd` lists for these programs.
fn shared_libraries(elves: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").args(elves).output()?;
    let mut libs: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/') && w.contains(".so"))
        .map(PathBuf::from)
        .collect();
    libs.sort();
    libs.dedup();
    if libs.is_empty() {
        bail!("ldd found no shared libraries");
    }
    Ok(libs)
}

/// How qemu runs the guest's CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// Software emulation, all virtual CPUs on one host thread: with one thread per CPU,
    /// about one boot in ten here died of an `int3` oops while tracer attached (the kernel
    /// patching its own code, which CPUs emulated in parallel do not see in step).
    Tcg,
}

impl Accel {
    fn args(self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => &["-accel", "tcg,thread=single"],
        }
    }
}

fn qemu(accel: Accel, kernel: &Path, initramfs: &Path, append: &str) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    c.args(accel.args())
        .args([
            "-m", "2G", "-smp", "2", "-display", "none", "-monitor", "none",
        ])
        .args(["-no-reboot", "-serial", "stdio"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", append])
        .stdin(Stdio::null());
    c
}

/// The guest kernel's command line. `tsc=reliable`: emulated CPUs read one clock, but the
/// kernel's check of their TSCs fails under emulation (5.10 and 6.1 then mark the TSC
/// unstable and their scheduler's clock drifts from the clock tracer's programs read, by
/// 18% in one run while the host was busy).
const GUEST_CMDLINE: &str = "console=ttyS0 panic=-1 quiet tsc=reliable";

/// KVM when it really runs a guest here: /dev/kvm can exist on a host that cannot (no
/// nested VT-x/SVM, a PVM-only kvm module, qemu aborting on an MSR).
pub fn pick_accel(kernel: &Path, initramfs: &Path) -> Accel {
    if fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Accel::Tcg;
    }
    let out = Command::new("timeout")
        .arg("60")
        .args(
            qemu(
                Accel::Kvm,
                kernel,
                initramfs,
                &format!("{GUEST_CMDLINE} kmatrix.probe"),
            )
            .get_args(),
        )
        .output();
    // The probe boots to /init and powers off there.
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("KMATRIX init") => Accel::Kvm,
        _ => Accel::Tcg,
    }
}

/// What one guest run left.
pub struct GuestRun {
    pub kernel: Kernel,
    /// The console: kernel messages and the init script's progress.
    pub console: String,
    /// The second serial port: test output and the kernel log.
    pub serial: String,
    pub seconds: f64,
    pub boots: u32,
}

/// Boots `kernel` with the initramfs (again once if it never reached /init: a rare early
/// crash of emulated boots), writing its logs under `logs`.
pub fn boot(
    kernel: &Kernel,
    initramfs: &Path,
    accel: Accel,
    timeout: Duration,
    logs: &Path,
) -> Result<GuestRun> {
    let console_log = logs.join(format!("{}.console", kernel.name));
    let serial_log = logs.join(format!("{}.serial", kernel.name));
    let start = Instant::now();
    let mut boots = 0;
    loop {
        boots += 1;
        let _ = fs::remove_file(&serial_log);
        let mut q = qemu(accel, &kernel.vmlinuz, initramfs, GUEST_CMDLINE);
        q.arg("-serial")
            .arg(format!("file:{}", serial_log.display()));
        let console = fs::File::create(&console_log)?;
        let status = Command::new("timeout")
            .args(["--kill-after=10", &timeout.as_secs().to_string()])
            .arg(q.get_program())
            .args(q.get_args())
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .status()
            .map_err(|e| anyhow!("cannot run qemu-system-x86_64: {e}"))?;
        let console = String::from_utf8_lossy(&fs::read(&console_log)?).replace('\r', "");
        if console.contains("KMATRIX init") || boots >= 2 {
            let serial = fs::read(&serial_log)
                .map(|b| String::from_utf8_lossy(&b).replace('\r', ""))
                .unwrap_or_default();
            return Ok(GuestRun {
                kernel: kernel.clone(),
                console,
                serial,
                seconds: start.elapsed().as_secs_f64(),
                boots,
            });
        }
        eprintln!(
            "xtask matrix: {} never reached /init (qemu: {status}); booting it again",
            kernel.name
        );
    }
}
