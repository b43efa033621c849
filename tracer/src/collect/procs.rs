//! Each traced process's own counts ([`tracer_common::maps::PROC_CALLS`]), kept by process
//! identity: read for the live ones at each sample, taken from the exit event for the ones
//! that ended (their kernel entry may be given to another process after it). Bounded:
//! after each report, ended processes beyond the busiest `keep` are folded into their
//! slot's sum.
use std::collections::BTreeMap;

use anyhow::Result;
use aya::maps::{Array, MapData};
use procfs::process::Process;
use tracer_common::{
    ProcCalls,
    event::{EventData, RawEvent},
    table,
};

use super::proc::{Live, fd_count};
use crate::model::{
    events::signal_name,
    procs::{Joined, ProcCount, ProcEnd, ProcKey},
};

pub struct ProcBook {
    map: Array<MapData, ProcCalls>,
    table_entries: u32,
    ns_per_tick: u64,
    /// Read each live process's RSS and descriptors (the memory section is on).
    memory: bool,
    /// Ended processes kept in full after a report (the busiest); the rest are folded.
    keep: usize,
    /// Selector slots start here (a process the book first hears of at its exit, under
    /// such a slot, was matched; under another, followed).
    first_selector_slot: u32,
    procs: BTreeMap<ProcKey, ProcCount>,
}

impl ProcBook {
    pub fn new(
        map: MapData,
        table_entries: u32,
        ns_per_tick: u64,
        memory: bool,
        keep: usize,
        first_selector_slot: u32,
    ) -> Result<Self> {
        Ok(Self {
            map: Array::try_from(aya::maps::Map::Array(map))?,
            table_entries,
            ns_per_tick,
            memory,
            keep,
            first_selector_slot,
            procs: BTreeMap::new(),
        })
    }

    /// The kernel entry of a live process: its id's, with its start in the same clock tick
    /// as /proc's (the kernel side writes the exact start, userspace whole ticks).
    fn own(&self, who: &Live) -> Option<ProcCalls> {
        let base = table::set_base(who.pid, self.table_entries);
        (base..base + table::WAYS)
            .filter_map(|i| self.map.get(&i, 0).ok())
            .find(|c| c.tgid == who.pid && c.start_ns / self.ns_per_tick == who.start_ticks)
    }

    /// Starts keeping a process's counts: one just traced.
    pub fn join(&mut self, who: &Live) {
        let key = ProcKey {
            pid: who.pid,
            start_ticks: who.start_ticks,
        };
        let (parent, comm) = Process::new(who.pid as i32)
            .and_then(|p| p.stat())
            .ok()
            .filter(|s| s.starttime == who.start_ticks)
            .map_or((0, String::new()), |s| (s.ppid as u32, s.comm));
        self.procs.entry(key).or_insert_with(|| ProcCount {
            processes: 1,
            slot: who.slot,
            parent,
            joined: Some(who.joined),
            comm,
            ..ProcCount::default()
        });
    }

    /// Reads the live processes' counts (and /proc entries: name, parent, and with the
    /// memory section RSS and descriptors). Those no longer live are marked gone until
    /// their exit event brings their final counts.
    pub fn read(&mut self, live: &[Live]) {
        for who in live {
            let key = ProcKey {
                pid: who.pid,
                start_ticks: who.start_ticks,
            };
            let Some(own) = self.own(who) else { continue };
            let Some(stat) = Process::new(who.pid as i32).and_then(|p| p.stat()).ok() else {
                continue;
            };
            // Read before this check, so it was the process's own.
            if stat.starttime != who.start_ticks {
                continue;
            }
            let (rss, fds) = if self.memory {
                let rss = Process::new(who.pid as i32)
                    .and_then(|p| p.status())
                    .ok()
                    .and_then(|s| s.vmrss)
                    .map(|kib| kib * 1024);
                (rss, fd_count(who.pid))
            } else {
                (None, None)
            };
            let running = who.is_running();
            let c = self.procs.entry(key).or_insert_with(|| ProcCount {
                processes: 1,
                slot: who.slot,
                joined: Some(who.joined),
                ..ProcCount::default()
            });
            if c.end.is_some() {
                continue; // its exit event came first: those counts are final
            }
            c.calls = c.calls.max(own.calls);
            c.errors = c.errors.max(own.errors);
            c.parent = stat.ppid as u32;
            c.comm = stat.comm;
            (c.rss_bytes, c.fds) = if running { (rss, fds) } else { (None, None) };
        }
        for (k, c) in self.procs.iter_mut() {
            if !k.is_folded() && c.end.is_none() && !live.iter().any(|l| l.pid == k.pid) {
                c.gone = true;
                (c.rss_bytes, c.fds) = (None, None);
            }
        }
    }

    /// The live (not ended) entry of process `pid`.
    fn current(&mut self, pid: u32) -> Option<&mut ProcCount> {
        self.procs
            .range_mut(
                ProcKey {
                    pid,
                    start_ticks: 0,
                }..=ProcKey {
                    pid,
                    start_ticks: u64::MAX,
                },
            )
            .rev()
            .map(|(_, c)| c)
            .find(|c| c.end.is_none())
    }

    /// Takes what the life events say: children followed (who they are, their parent),
    /// new names at exec, and the final counts of processes that ended.
    pub fn events(&mut self, events: &[RawEvent]) {
        for e in events {
            match e.data {
                EventData::Fork(f) if f.followed != 0 => {
                    let comm = self.current(e.header.tgid).map(|p| p.comm.clone());
                    let key = ProcKey {
                        pid: f.child_tgid,
                        start_ticks: f.child_start_ns / self.ns_per_tick,
                    };
                    self.procs.entry(key).or_insert_with(|| ProcCount {
                        processes: 1,
                        slot: e.header.slot,
                        parent: e.header.tgid,
                        joined: Some(Joined::Followed),
                        comm: comm.unwrap_or_default(),
                        ..ProcCount::default()
                    });
                    continue;
                }
                EventData::Exec(x) => {
                    if let Some(c) = self.current(e.header.tgid) {
                        c.comm = crate::model::events::comm(&x.comm);
                    }
                    continue;
                }
                _ => {}
            }
            let EventData::Exit(x) = e.data else { continue };
            if x.group_dead == 0 {
                continue;
            }
            let key = ProcKey {
                pid: e.header.tgid,
                start_ticks: x.start_ns / self.ns_per_tick,
            };
            let slot = e.header.slot;
            let joined = if slot >= self.first_selector_slot {
                Joined::Matched
            } else {
                Joined::Followed
            };
            let c = self.procs.entry(key).or_insert_with(|| ProcCount {
                processes: 1,
                slot,
                joined: Some(joined),
                ..ProcCount::default()
            });
            c.calls = c.calls.max(x.calls);
            c.errors = c.errors.max(x.errors);
            let sig = (x.exit_code & 0x7f) as i32;
            c.end = Some(ProcEnd {
                exit_code: (sig == 0).then_some(((x.exit_code >> 8) & 0xff) as i32),
                signal: (sig != 0).then(|| signal_name(sig)),
            });
            c.gone = false;
            c.rss_bytes = None;
            c.fds = None;
        }
    }

    /// Every process's counts so far (cumulative), with the folded sums.
    pub fn snapshot(&self) -> BTreeMap<ProcKey, ProcCount> {
        self.procs.clone()
    }

    /// Once a report has shown them: ended processes beyond the `keep` busiest are folded
    /// into their slot's sum (so that the final report can still list the busiest of the
    /// whole run, and the book stays bounded).
    pub fn reclaim(&mut self) {
        let mut ended: Vec<(u64, ProcKey)> = self
            .procs
            .iter()
            .filter(|(k, c)| !k.is_folded() && c.end.is_some())
            .map(|(k, c)| (c.calls, *k))
            .collect();
        if ended.len() <= self.keep {
            return;
        }
        ended.sort_by(|a, b| b.cmp(a));
        for (_, k) in ended.split_off(self.keep) {
            let Some(c) = self.procs.remove(&k) else {
                continue;
            };
            let sum = self
                .procs
                .entry(ProcKey::folded(c.slot))
                .or_insert_with(|| ProcCount {
                    slot: c.slot,
                    ..ProcCount::default()
                });
            sum.fold(&c);
        }
    }
}
