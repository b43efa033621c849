//! Each traced process on its own: the processes a target's slot counts together (its
//! followed children, the processes a selector matched) each get an entry with their own
//! calls and errors (counted in the kernel per process), their parent, how they joined,
//! and, with the memory section, their RSS and descriptors from their own /proc entry.
//! At most N are listed in full; the rest are summed into one "other" entry.
use std::collections::BTreeMap;

use serde::Serialize;

use super::ProcessInfo;

/// How a process came to be traced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Joined {
    /// Named with `--pid`.
    Attached,
    /// The command tracer started.
    Launched,
    /// A child or descendant of a traced process (`--follow`, or a selector's process).
    Followed,
    /// Taken in by a selector (`--comm`, `--cgroup`, `--exe`).
    Matched,
}

/// Who a process is: its id and its start (clock ticks since boot, as /proc/PID/stat says;
/// ids are reused, the pair is not). A process's counts are under its own key; ended
/// processes reported once are folded into their slot's key `{pid: 0, start_ticks: slot}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcKey {
    pub pid: u32,
    pub start_ticks: u64,
}

impl ProcKey {
    /// The key under which a slot's reclaimed processes are summed.
    pub fn folded(slot: u32) -> Self {
        ProcKey {
            pid: 0,
            start_ticks: slot as u64,
        }
    }

    pub fn is_folded(&self) -> bool {
        self.pid == 0
    }
}

/// How a process ended: its exit code, or the signal that killed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcEnd {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// A process's own counts, cumulative since it joined, and what is known of it; or, under
/// a folded key, the sum of a slot's reclaimed processes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcCount {
    pub calls: u64,
    pub errors: u64,
    /// Processes counted here: 1, or how many were folded.
    pub processes: u64,
    pub slot: u32,
    pub parent: u32,
    pub joined: Option<Joined>,
    pub comm: String,
    /// Set once it has ended (its exit event seen: its counts are final).
    pub end: Option<ProcEnd>,
    /// Gone from /proc with its exit event not seen yet (or lost).
    pub gone: bool,
    /// Readings of its /proc entry at the sample (memory section, live processes).
    pub rss_bytes: Option<u64>,
    pub fds: Option<u64>,
}

impl ProcCount {
    /// Adds `other`'s counts (folding a reclaimed process in).
    pub fn fold(&mut self, other: &ProcCount) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.processes += other.processes;
    }
}

/// What happened to each process between `prev` and `cur` (both cumulative): the counts of
/// the window, for the processes that were alive in it or ended in it.
pub fn since(
    cur: &BTreeMap<ProcKey, ProcCount>,
    prev: &BTreeMap<ProcKey, ProcCount>,
) -> BTreeMap<ProcKey, ProcCount> {
    cur.iter()
        .filter_map(|(k, c)| {
            let before = prev.get(k);
            let mut w = c.clone();
            if let Some(b) = before {
                w.calls = c.calls.saturating_sub(b.calls);
                w.errors = c.errors.saturating_sub(b.errors);
                w.processes = c.processes.saturating_sub(b.processes);
            }
            let keep = if k.is_folded() {
                w.processes > 0 || w.calls > 0
            } else {
                // Alive in the window, or ended in it.
                w.calls > 0 || c.end.is_none() || before.is_none_or(|b| b.end.is_none())
            };
            keep.then_some((*k, w))
        })
        .collect()
}

/// One process of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcEntry {
    pub pid: u32,
    pub comm: String,
    /// Its parent process (as last seen: a process whose parent ended is re-parented).
    pub parent: u32,
    pub joined: Option<Joined>,
    /// The target or selector it is counted under (`PID (comm)`, `comm:NAME`, ...).
    pub under: String,
    /// That target's slot (its entry in the report's `processes`).
    #[serde(skip)]
    pub slot: u32,
    pub calls: u64,
    pub calls_per_s: f64,
    pub errors: u64,
    pub alive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<ProcEnd>,
    /// Memory section: its RSS and open descriptors, from its own /proc entry, at the
    /// window's end (None once it has ended).
    pub rss_bytes: Option<u64>,
    pub fds: Option<u64>,
}

/// The processes beyond those listed, summed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OtherProcs {
    pub processes: u64,
    pub calls: u64,
    pub errors: u64,
}

/// Every traced process of the window: the first `limit` by calls in full, the rest summed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProcsReport {
    /// Processes traced in the window (listed, and in `other`).
    pub traced: u64,
    pub listed: Vec<ProcEntry>,
    pub other: OtherProcs,
    /// Whether any of them joined other than by being named (followed or matched): then
    /// a target's numbers are several processes' and the list is worth showing.
    #[serde(skip)]
    pub several: bool,
}

impl ProcsReport {
    /// `procs`: the window's counts; `limit`: processes listed in full; `targets`: the
    /// slots' names; `secs`: the window's length.
    pub fn build(
        procs: &BTreeMap<ProcKey, ProcCount>,
        limit: usize,
        targets: &[ProcessInfo],
        secs: f64,
    ) -> Self {
        let mut r = ProcsReport::default();
        let mut members: Vec<(&ProcKey, &ProcCount)> = Vec::new();
        for (k, c) in procs {
            if k.is_folded() {
                r.traced += c.processes;
                r.other.processes += c.processes;
                r.other.calls += c.calls;
                r.other.errors += c.errors;
                r.several |= c.processes > 0;
            } else {
                r.traced += 1;
                r.several |= matches!(c.joined, Some(Joined::Followed | Joined::Matched) | None);
                members.push((k, c));
            }
        }
        // Most calls first; then by pid, and the earlier process of a reused pid first.
        members.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(b.0)));
        for (i, (k, c)) in members.into_iter().enumerate() {
            if i >= limit {
                r.other.processes += 1;
                r.other.calls += c.calls;
                r.other.errors += c.errors;
                continue;
            }
            let under = targets
                .get(c.slot as usize)
                .map_or_else(String::new, |t| ProcessInfo::name(t.pid, &t.comm));
            r.listed.push(ProcEntry {
                pid: k.pid,
                comm: c.comm.clone(),
                parent: c.parent,
                joined: c.joined,
                under,
                slot: c.slot,
                calls: c.calls,
                calls_per_s: super::rate(c.calls, secs),
                errors: c.errors,
                alive: c.end.is_none() && !c.gone,
                end: c.end.clone(),
                rss_bytes: c.rss_bytes,
                fds: c.fds,
            });
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pid: u32, start_ticks: u64) -> ProcKey {
        ProcKey { pid, start_ticks }
    }

    fn proc(slot: u32, calls: u64, joined: Joined) -> ProcCount {
        ProcCount {
            calls,
            processes: 1,
            slot,
            joined: Some(joined),
            comm: "w".into(),
            ..ProcCount::default()
        }
    }

    fn targets() -> Vec<ProcessInfo> {
        vec![ProcessInfo {
            pid: 10,
            comm: "w".into(),
        }]
    }

    #[test]
    fn the_busiest_are_listed_and_the_rest_summed() {
        let mut procs = BTreeMap::new();
        procs.insert(key(10, 1), proc(0, 5, Joined::Launched));
        procs.insert(key(11, 2), proc(0, 300, Joined::Followed));
        procs.insert(key(12, 3), proc(0, 100, Joined::Followed));
        procs.insert(key(13, 4), proc(0, 200, Joined::Followed));
        let mut folded = proc(0, 70, Joined::Followed);
        folded.processes = 7;
        folded.errors = 2;
        procs.insert(ProcKey::folded(0), folded);
        let r = ProcsReport::build(&procs, 2, &targets(), 1.0);
        assert_eq!(r.traced, 11);
        assert!(r.several);
        let listed: Vec<(u32, u64)> = r.listed.iter().map(|e| (e.pid, e.calls)).collect();
        assert_eq!(listed, [(11, 300), (13, 200)]);
        assert_eq!(r.listed[0].under, "10 (w)");
        assert_eq!(
            r.other,
            OtherProcs {
                processes: 9,
                calls: 175,
                errors: 2
            }
        );
    }

    #[test]
    fn a_lone_named_process_is_not_several() {
        let mut procs = BTreeMap::new();
        procs.insert(key(10, 1), proc(0, 5, Joined::Launched));
        assert!(!ProcsReport::build(&procs, 10, &targets(), 1.0).several);
    }

    #[test]
    fn a_window_has_its_own_counts_and_drops_what_ended_before() {
        let mut prev = BTreeMap::new();
        let mut ended = proc(0, 50, Joined::Followed);
        ended.end = Some(ProcEnd {
            exit_code: Some(0),
            signal: None,
        });
        prev.insert(key(11, 1), ended.clone());
        prev.insert(key(12, 1), proc(0, 10, Joined::Followed));
        prev.insert(key(13, 1), proc(0, 10, Joined::Followed));
        let mut cur = prev.clone();
        cur.get_mut(&key(12, 1)).unwrap().calls = 25;
        let mut now_ended = proc(0, 10, Joined::Followed);
        now_ended.end = ended.end.clone();
        cur.insert(key(13, 1), now_ended);
        cur.insert(key(14, 9), proc(0, 4, Joined::Followed));
        let w = since(&cur, &prev);
        let got: Vec<(u32, u64)> = w.iter().map(|(k, c)| (k.pid, c.calls)).collect();
        // 11 ended before the window; 13 ended in it (no calls); 14 is new.
        assert_eq!(got, [(12, 15), (13, 0), (14, 4)]);
    }

    #[test]
    fn folded_processes_count_once() {
        let mut prev = BTreeMap::new();
        let mut f = proc(0, 100, Joined::Followed);
        f.processes = 3;
        prev.insert(ProcKey::folded(0), f.clone());
        let mut cur = prev.clone();
        assert!(since(&cur, &prev).is_empty());
        f.processes = 4;
        f.calls = 130;
        cur.insert(ProcKey::folded(0), f);
        let w = since(&cur, &prev);
        let got = &w[&ProcKey::folded(0)];
        assert_eq!((got.processes, got.calls), (1, 30));
    }
}
