//! Debian's kernel packages, fetched with a private apt configuration under the cache
//! folder (its own sources, lists and package cache: the host's apt and /boot are not
//! touched), and only the kernel image unpacked from each.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, anyhow, bail};

use crate::setup::run;

const MIRROR: &str = "http://deb.debian.org/debian";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A kernel to boot: where its image is, and where it came from.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The package's ABI name, e.g. `5.10.0-32-amd64`.
    pub name: String,
    pub suite: String,
    pub package: String,
    pub vmlinuz: PathBuf,
}

/// `SUITE` (its newest `linux-image-amd64`) or `SUITE=PACKAGE`.
fn parse_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('=') {
        Some((suite, pkg)) => (suite, Some(pkg)),
        None => (spec, None),
    }
}

/// The private apt configuration.
struct Apt {
    dir: PathBuf,
}

impl Apt {
    fn new(cache: &Path, suites: &[&str]) -> Result<Self> {
        let dir = cache.join("apt");
        for d in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(dir.join(d))?;
        }
        let sources: String = suites
            .iter()
            .map(|s| format!("deb [signed-by={KEYRING}] {MIRROR} {s} main\n"))
            .collect();
        fs::write(dir.join("sources.list"), sources)?;
        // No translations, no DEP-11 metadata, no update hooks: seconds instead of a minute.
        fs::write(
            dir.join("apt.conf"),
            "#clear APT::Update::Post-Invoke-Success;\n#clear APT::Update::Post-Invoke;\n\
             #clear DPkg::Post-Invoke;\n\
             Acquire::IndexTargets::deb::DEP-11::DefaultEnabled \"false\";\n\
             Acquire::Languages \"none\";\n",
        )?;
        Ok(Self { dir })
    }

    fn cmd(&self, tool: &str) -> Command {
        let d = self.dir.display();
        let mut c = Command::new(tool);
        c.arg("-c").arg(self.dir.join("apt.conf"));
        for o in [
            format!("Dir::Etc::SourceList={d}/sources.list"),
            "Dir::Etc::SourceParts=/dev/null".into(),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::Cache={d}/cache"),
            "Dir::Etc::Preferences=/dev/null".into(),
            "Dir::Etc::PreferencesParts=/dev/null".into(),
            "Debug::NoLocking=1".into(),
            "APT::Sandbox::User=root".into(),
        ] {
            c.arg("-o").arg(o);
        }
        c
    }

    fn output(&self, tool: &str, args: &[&str]) -> Result<String> {
        let out = self.cmd(tool).args(args).output()?;
        if !out.status.success() {
            bail!(
                "{tool} {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The kernel package a suite's `linux-image-amd64` depends on.
    fn newest(&self, suite: &str) -> Result<String> {
        let madison = self.output("apt-cache", &["madison", "linux-image-amd64"])?;
        let version = madison
            .lines()
            .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>())
            .find(|f| {
                f.len() >= 3
                    && f[2]
                        .split_whitespace()
                        .any(|w| w == format!("{suite}/main"))
            })
            .map(|f| f[1].to_string())
            .ok_or_else(|| anyhow!("no linux-image-amd64 in {suite}"))?;
        let show = self.output(
            "apt-cache",
            &["show", &format!("linux-image-amd64={version}")],
        )?;
        first_dependency(&show, "linux-image-")
            .ok_or_else(|| anyhow!("linux-image-amd64 {version} names no kernel package"))
    }

    /// The package that holds the image: from Linux 6.19 Debian moved it into
    /// `linux-binary-<abi>`, a dependency of `linux-image-<abi>`.
    fn image_package(&self, package: &str) -> Result<String> {
        let show = self.output("apt-cache", &["show", package])?;
        Ok(first_dependency(&show, "linux-binary-").unwrap_or_else(|| package.to_string()))
    }
}

/// The first package of a `Depends:` line (of `apt-cache show` output) named `prefix...`.
fn first_dependency(show: &str, prefix: &str) -> Option<String> {
    let deps = show.lines().find_map(|l| l.strip_prefix("Depends: "))?;
    deps.split(',')
        .flat_map(|alt| alt.split('|'))
        .map(|d| d.split_whitespace().next().unwrap_or(""))
        .find(|d| d.starts_with(prefix))
        .map(str::to_string)
}

/// Fetches (or finds in the cache) every kernel of `specs` and unpacks its image.
pub fn fetch(cache: &Path, specs: &[String]) -> Result<Vec<Kernel>> {
    let mut suites: Vec<&str> = specs.iter().map(|s| parse_spec(s).0).collect();
    suites.sort_unstable();
    suites.dedup();
    let apt = Apt::new(cache, &suites)?;
    eprintln!(
        "xtask matrix: apt-get update (private lists: {})",
        suites.join(" ")
    );
    run(apt.cmd("apt-get").args(["update", "-qq"]))?;
    let debs = cache.join("debs");
    fs::create_dir_all(&debs)?;
    let mut kernels = Vec::new();
    for spec in specs {
        let (suite, pinned) = parse_spec(spec);
        let package = match pinned {
            Some(p) => p.to_string(),
            None => apt.newest(suite)?,
        };
        let holder = apt
            .image_package(&package)
            .with_context(|| format!("kernel {spec}: is {package} still in {suite}?"))?;
        let name = holder
            .trim_start_matches("linux-image-")
            .trim_start_matches("linux-binary-")
            .to_string();
        let dir = cache.join("kernels").join(&name);
        let vmlinuz = dir.join("vmlinuz");
        if !vmlinuz.exists() {
            let deb = match find_deb(&debs, &holder)? {
                Some(d) => d,
                None => {
                    eprintln!("xtask matrix: apt-get download {holder} ({suite})");
                    run(apt
                        .cmd("apt-get")
                        .current_dir(&debs)
                        .args(["download", "-qq", &holder]))?;
                    find_deb(&debs, &holder)?
                        .ok_or_else(|| anyhow!("apt-get download left no {holder} package"))?
                }
            };
            unpack_image(&deb, &dir)?;
        }
        kernels.push(Kernel {
            name,
            suite: suite.to_string(),
            package,
            vmlinuz,
        });
    }
    Ok(kernels)
}

fn find_deb(dir: &Path, package: &str) -> Result<Option<PathBuf>> {
    let prefix = format!("{package}_");
    Ok(fs::read_dir(dir)?.flatten().map(|e| e.path()).find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
    }))
}

/// The first file under `dir` whose name starts with `prefix`.
fn find_file(dir: &Path, prefix: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, prefix) {
                return Some(found);
            }
        } else if entry.file_name().to_string_lossy().starts_with(prefix) {
            return Some(path);
        }
    }
    None
}

/// Unpacks only the image (`vmlinuz*`) of a kernel package into `dir/vmlinuz`.
fn unpack_image(deb: &Path, dir: &Path) -> Result<()> {
    let tmp = dir.with_extension("tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let unpack =
        "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards --no-anchored 'vmlinuz*'";
    if !super::sh(unpack, &[deb.as_os_str(), tmp.as_os_str()])
        .status()?
        .success()
    {
        bail!("cannot unpack the kernel image of {}", deb.display());
    }
    // boot/vmlinuz-<abi>, or (from Linux 6.19) usr/lib/modules/<abi>/vmlinuz.
    let image =
        find_file(&tmp, "vmlinuz").ok_or_else(|| anyhow!("no vmlinuz in {}", deb.display()))?;
    fs::create_dir_all(dir)?;
    fs::rename(&image, dir.join("vmlinuz"))?;
    fs::remove_dir_all(&tmp)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_suite_and_maybe_a_package() {
        assert_eq!(parse_spec("bookworm"), ("bookworm", None));
        assert_eq!(
            parse_spec("trixie-backports=linux-image-6.16.3+deb13-amd64"),
            ("trixie-backports", Some("linux-image-6.16.3+deb13-amd64"))
        );
    }

    #[test]
    fn the_kernel_package_is_the_first_such_dependency() {
        let show = "Package: linux-image-amd64\nVersion: 6.1.176-1\n\
                    Depends: linux-image-6.1.0-50-amd64 (= 6.1.176-1), foo\nDescription: x\n";
        assert_eq!(
            first_dependency(show, "linux-image-").as_deref(),
            Some("linux-image-6.1.0-50-amd64")
        );
        let show = "Depends: kmod, linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1) | x\n";
        assert_eq!(
            first_dependency(show, "linux-binary-").as_deref(),
            Some("linux-binary-7.3.4+deb13-amd64")
        );
        assert_eq!(first_dependency("Depends: kmod\n", "linux-binary-"), None);
    }
}
