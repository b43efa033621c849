//! Selectors (`--comm NAME`, `--cgroup PATH`): what they match now, and what the kernel side
//! (`tracer-ebpf/src/select.rs`) needs to match later ones, at exec and at a move between
//! cgroups. Each selector has a slot of its own.
use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use tracer_common::{SelectConfig, target_flags};

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
}

/// Where cgroup hierarchies are mounted; a relative `--cgroup` path is taken from here.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl Selector {
    /// The selectors of the command line, in order: names, then cgroups.
    pub fn all(comms: &[String], cgroups: &[PathBuf]) -> Result<Vec<Selector>> {
        let mut v: Vec<Selector> = comms.iter().cloned().map(Selector::Comm).collect();
        for c in cgroups {
            v.push(cgroup(c)?);
        }
        Ok(v)
    }

    /// How the report names the selector's entry.
    pub fn label(&self) -> String {
        match self {
            Selector::Comm(n) => format!("comm:{n}"),
            Selector::Cgroup { path, .. } => format!("cgroup:{}", path.display()),
        }
    }

    /// The target flag of the processes it takes in.
    pub fn flag(&self) -> u32 {
        match self {
            Selector::Comm(_) => target_flags::BY_COMM,
            Selector::Cgroup { .. } => target_flags::BY_CGROUP,
        }
    }

    pub fn info(&self) -> ProcessInfo {
        ProcessInfo::selector(self.label())
    }

    /// The processes it matches now (tracer itself excepted).
    pub fn matching(&self) -> Vec<u32> {
        let me = std::process::id();
        let pids: Vec<u32> = match self {
            Selector::Comm(name) => fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|c| c.trim_end_matches('\n') == name)
                })
                .collect(),
            Selector::Cgroup { path, .. } => fs::read_to_string(path.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect(),
        };
        pids.into_iter().filter(|&p| p != me).collect()
    }
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
        }
    }
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
