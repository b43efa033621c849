//! Selectors (`--comm NAME`, `--cgroup PATH`, `--exe PATH`): what they match now, and what
//! the kernel side (`tracer-ebpf/src/select.rs`) needs to match later ones, at exec and at
//! a move between cgroups. Each selector has a slot of its own.
use std::{
    fs,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use aya::maps::{Array, MapData};
use tracer_common::{EXE_PATH_MAX, ExeMatch, MAX_EXES, SelectConfig, target_flags};

use crate::model::ProcessInfo;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Comm(String),
    /// The cgroup's directory and its id (the directory's inode number: the kernel's
    /// `kernfs_node.id` on 64-bit machines).
    Cgroup {
        path: PathBuf,
        id: u64,
    },
    /// An executable: the path as given, its canonical form, and the file's device (as
    /// stat gives it) and inode.
    Exe {
        given: PathBuf,
        canonical: PathBuf,
        dev: u64,
        ino: u64,
    },
}

/// Where cgroup hierarchies are mounted; a relative `--cgroup` path is taken from here.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl Selector {
    /// The selectors of the command line, in order: names, cgroups, executables.
    pub fn all(comms: &[String], cgroups: &[PathBuf], exes: &[PathBuf]) -> Result<Vec<Selector>> {
        let mut v: Vec<Selector> = comms.iter().cloned().map(Selector::Comm).collect();
        for c in cgroups {
            v.push(cgroup(c)?);
        }
        for e in exes {
            v.push(exe(e)?);
        }
        Ok(v)
    }

    /// How the report names the selector's entry.
    pub fn label(&self) -> String {
        match self {
            Selector::Comm(n) => format!("comm:{n}"),
            Selector::Cgroup { path, .. } => format!("cgroup:{}", path.display()),
            Selector::Exe { given, .. } => format!("exe:{}", given.display()),
        }
    }

    /// The target flag of the processes it takes in.
    pub fn flag(&self) -> u32 {
        match self {
            Selector::Comm(_) => target_flags::BY_COMM,
            Selector::Cgroup { .. } => target_flags::BY_CGROUP,
            Selector::Exe { .. } => target_flags::BY_EXE,
        }
    }

    pub fn info(&self) -> ProcessInfo {
        ProcessInfo::selector(self.label())
    }

    /// The processes it matches now (tracer itself excepted).
    pub fn matching(&self) -> Vec<u32> {
        let me = std::process::id();
        let pids: Vec<u32> = match self {
            Selector::Comm(name) => processes_where(|pid| {
                fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim_end_matches('\n') == name)
            }),
            Selector::Cgroup { path, .. } => fs::read_to_string(path.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect(),
            // Like pidof: the file each process runs (/proc/PID/exe, followed), by identity.
            Selector::Exe { dev, ino, .. } => processes_where(|pid| {
                fs::metadata(format!("/proc/{pid}/exe"))
                    .is_ok_and(|m| (m.dev(), m.ino()) == (*dev, *ino))
            }),
        };
        pids.into_iter().filter(|&p| p != me).collect()
    }
}

/// The processes in /proc for which `matches` holds.
fn processes_where(matches: impl Fn(u32) -> bool) -> Vec<u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| matches(pid))
        .collect()
}

/// A `--cgroup` path: absolute, or relative to /sys/fs/cgroup; it must be a cgroup (a
/// directory with `cgroup.procs`).
fn cgroup(given: &Path) -> Result<Selector> {
    let path = if given.is_absolute() {
        given.to_path_buf()
    } else {
        Path::new(CGROUP_ROOT).join(given)
    };
    let meta = fs::metadata(&path).with_context(|| format!("--cgroup {}", given.display()))?;
    if !meta.is_dir() || !path.join("cgroup.procs").exists() {
        bail!("--cgroup {}: not a cgroup directory", given.display());
    }
    Ok(Selector::Cgroup {
        id: meta.ino(),
        path,
    })
}

/// An `--exe` path: an existing regular file, its canonical path at most
/// `EXE_PATH_MAX - 1` bytes.
fn exe(given: &Path) -> Result<Selector> {
    // Escaped for the terminal where the error is printed (`main`), not here.
    let shown = || given.display();
    let canonical = fs::canonicalize(given).with_context(|| format!("--exe {}", shown()))?;
    let meta = fs::metadata(&canonical).with_context(|| format!("--exe {}", shown()))?;
    if !meta.is_file() {
        bail!("--exe {}: not a regular file", shown());
    }
    if canonical.as_os_str().len() >= EXE_PATH_MAX || given.as_os_str().len() >= EXE_PATH_MAX {
        bail!(
            "--exe {}: the path is longer than {} bytes",
            shown(),
            EXE_PATH_MAX - 1
        );
    }
    Ok(Selector::Exe {
        given: given.to_path_buf(),
        canonical,
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// A device number as stat gives it, as the kernel keeps it (`MKDEV`).
fn kernel_dev(dev: u64) -> u32 {
    (libc::major(dev) << 20) | libc::minor(dev)
}

/// The kernel side's entries of the `--exe` selectors (each under its slot, in the order of
/// `selectors` from `first_slot`): the canonical path, and the path as given when it is
/// absolute and another (a link, as /usr/bin/node often is), each with the file's identity.
pub fn exe_entries(selectors: &[Selector], first_slot: u32) -> Vec<(PathBuf, ExeMatch)> {
    let mut v = Vec::new();
    for (i, s) in selectors.iter().enumerate() {
        let Selector::Exe {
            given,
            canonical,
            dev,
            ino,
        } = s
        else {
            continue;
        };
        let mut paths = vec![canonical];
        if given.is_absolute() && given != canonical {
            paths.push(given);
        }
        for p in paths {
            let mut e = ExeMatch {
                ino: *ino,
                dev: kernel_dev(*dev),
                slot: first_slot + i as u32,
                ..Default::default()
            };
            let bytes = p.as_os_str().as_bytes();
            e.path[..bytes.len()].copy_from_slice(bytes);
            v.push((p.clone(), e));
        }
    }
    v.truncate(MAX_EXES as usize);
    v
}

/// The kernel side's `--exe` entries, kept current: a path whose file was replaced (a new
/// inode: a package upgrade, a deploy) matches the new file from the next look on. Between
/// the replacement and that look, an exec by the path itself still matches (the kernel
/// side compares the file name too); one through another name waits for the look.
pub struct ExeWatch {
    map: Array<MapData, ExeMatch>,
    entries: Vec<(PathBuf, ExeMatch)>,
}

impl ExeWatch {
    /// Fills the map; None when there is no `--exe` selector.
    pub fn new(
        mut map: Array<MapData, ExeMatch>,
        entries: Vec<(PathBuf, ExeMatch)>,
    ) -> Result<Option<Self>> {
        if entries.is_empty() {
            return Ok(None);
        }
        for (i, (_, e)) in entries.iter().enumerate() {
            map.set(i as u32, *e, 0)
                .context("cannot fill the map of --exe selectors")?;
        }
        Ok(Some(Self { map, entries }))
    }

    /// Looks at each path again; puts in the file's identity where it changed.
    pub fn refresh(&mut self) -> Result<()> {
        for (i, (path, e)) in self.entries.iter_mut().enumerate() {
            let Ok(m) = fs::metadata(&*path) else {
                continue; // gone for now (being replaced): the name still matches
            };
            let (dev, ino) = (kernel_dev(m.dev()), m.ino());
            if (e.dev, e.ino) != (dev, ino) {
                (e.dev, e.ino) = (dev, ino);
                self.map
                    .set(i as u32, *e, 0)
                    .context("cannot update the map of --exe selectors")?;
            }
        }
        Ok(())
    }
}

/// What the kernel side matches, each selector under its slot (`first_slot` onwards, in
/// the order of `selectors`).
pub fn config(selectors: &[Selector], first_slot: u32) -> SelectConfig {
    let mut c = SelectConfig::default();
    for (i, s) in selectors.iter().enumerate() {
        let slot = first_slot + i as u32;
        match s {
            Selector::Comm(name) => {
                let k = c.n_comms as usize;
                let n = name.len().min(15);
                c.comms[k][..n].copy_from_slice(&name.as_bytes()[..n]);
                c.comm_slots[k] = slot;
                c.n_comms += 1;
            }
            Selector::Cgroup { id, .. } => {
                let k = c.n_cgroups as usize;
                c.cgroups[k] = *id;
                c.cgroup_slots[k] = slot;
                c.n_cgroups += 1;
            }
            Selector::Exe { .. } => {}
        }
    }
    c.n_exes = exe_entries(selectors, first_slot).len() as u32;
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_gets_each_selector_under_its_slot() {
        let s = vec![
            Selector::Comm("node".into()),
            Selector::Cgroup {
                path: "/sys/fs/cgroup/app".into(),
                id: 42,
            },
            Selector::Comm("nginx".into()),
        ];
        let c = config(&s, 3);
        assert_eq!(c.n_comms, 2);
        assert_eq!(&c.comms[0][..5], b"node\0");
        assert_eq!(&c.comms[1][..6], b"nginx\0");
        assert_eq!(c.comm_slots[..2], [3, 5]);
        assert_eq!((c.n_cgroups, c.cgroups[0], c.cgroup_slots[0]), (1, 42, 4));
        assert_eq!(s[1].label(), "cgroup:/sys/fs/cgroup/app");
        assert_eq!(s[0].flag(), target_flags::BY_COMM);
    }

    #[test]
    fn an_executable_is_matched_by_its_file_and_by_its_paths() {
        use std::os::unix::process::CommandExt;
        // /proc/self/exe: this test binary, running now.
        let me = fs::read_link("/proc/self/exe").unwrap();
        let dir = std::env::temp_dir().join(format!("tracer-unit-exe-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let link = dir.join("link");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&me, &link).unwrap();
        let s = vec![Selector::Comm("x".into()), exe(&link).unwrap()];
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(s[1].label(), format!("exe:{}", link.display()));
        let entries = exe_entries(&s, 4);
        // The canonical path, then the link as given; both under the selector's slot.
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, fs::canonicalize(&me).unwrap());
        assert_eq!(entries[1].0, link);
        let m = fs::metadata(&me).unwrap();
        for (p, e) in &entries {
            assert_eq!((e.slot, e.ino), (5, m.ino()));
            let bytes = p.as_os_str().as_bytes();
            assert_eq!(&e.path[..bytes.len()], bytes);
            assert_eq!(e.path[bytes.len()], 0);
        }
        assert_eq!(config(&s, 4).n_exes, 2);
        // A process running the file is matched once it has exec'd it (5 s at most). Its
        // argv[0] stays "sleep": in the kernel matrix's guests the file is busybox.
        let sleep_bin = fs::canonicalize("/bin/sleep").unwrap();
        let mut child = std::process::Command::new(&sleep_bin)
            .arg0("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let sel = exe(&sleep_bin).unwrap();
        let start = std::time::Instant::now();
        let found = loop {
            let found = sel.matching();
            if found.contains(&child.id()) || start.elapsed().as_secs() >= 5 {
                break found;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(!found.contains(&std::process::id()));
        assert!(exe(Path::new("/nonexistent-exe")).is_err());
        assert!(exe(Path::new("/proc")).is_err());
    }

    #[test]
    fn a_name_matches_the_processes_of_that_name_but_tracer() {
        // A forked child starts with the name of the thread that forked it (this test's
        // thread, named after the test), and takes its own at its exec: wait (5 s at most)
        // until it is no longer the thread's.
        let thread = fs::read_to_string("/proc/thread-self/comm").unwrap();
        let mut sleep = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let comm = format!("/proc/{}/comm", sleep.id());
        let start = std::time::Instant::now();
        let name = loop {
            let c = fs::read_to_string(&comm).unwrap_or_default();
            if (!c.is_empty() && c != thread) || start.elapsed().as_secs() >= 5 {
                break c;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        let found = Selector::Comm(name.trim_end().to_string()).matching();
        let _ = sleep.kill();
        let _ = sleep.wait();
        assert!(found.contains(&sleep.id()), "{name:?}: {found:?}");
        // This process's own name (its main thread's) matches it, but tracer is left out.
        let mine = fs::read_to_string("/proc/self/comm").unwrap();
        let me = Selector::Comm(mine.trim_end().to_string()).matching();
        assert!(!me.contains(&std::process::id()));
        assert!(cgroup(Path::new("/nonexistent-cgroup")).is_err());
        assert!(cgroup(Path::new("/proc")).is_err());
    }
}
