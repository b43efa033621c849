//! Reads the scheduling maps: per-process totals, per-thread counters, and each thread's
//! current state (to add the interval still open); seeds the state of threads that exist
//! when tracing starts, from /proc.
use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use aya::{
    Ebpf,
    maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray},
};
use tracer_common::{SchedStats, ThreadSched, block_cause, maps, sched_state};

use super::{proc::Live, take};
use crate::model::{
    roles,
    sched::{SchedCounts, ThreadCounts},
};

/// Ended threads kept in full once their kernel entries are reclaimed (with `--threads`);
/// beyond, the least busy are dropped from the lists (their process totals keep them).
pub const MAX_ENDED_THREADS: usize = 1000;

pub struct SchedCollector {
    totals: PerCpuArray<MapData, SchedStats>,
    threads: BpfHashMap<MapData, u32, SchedStats>,
    state: Array<MapData, ThreadSched>,
    /// Thread names, remembered so that ended threads keep theirs.
    comms: HashMap<u32, String>,
    slots: u32,
    /// Entries of the per-id tables (THREAD_SCHED's).
    table_entries: u32,
    /// Ended threads whose `THREAD_STATS` entries were deleted: their final counters.
    ended: BTreeMap<u32, ThreadCounts>,
    /// Ended threads dropped beyond [`MAX_ENDED_THREADS`].
    ended_dropped: u64,
    /// Threads seen ended at the last reclaim, with their time then: reclaimed at the
    /// next if still ended and unchanged (a thread's last switch-out may come just after
    /// it left /proc).
    quiet: HashMap<u32, u64>,
}

fn thread_comm(pid: u32, tid: u32) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
    Some(s.trim_end().to_string())
}

impl SchedCollector {
    pub fn new(ebpf: &mut Ebpf, slots: u32, table_entries: u32) -> Result<Self> {
        Ok(Self {
            totals: take(ebpf, maps::SCHED_STATS)?,
            threads: take(ebpf, maps::THREAD_STATS)?,
            state: take(ebpf, maps::THREAD_SCHED)?,
            comms: HashMap::new(),
            slots,
            table_entries,
            ended: BTreeMap::new(),
            ended_dropped: 0,
            quiet: HashMap::new(),
        })
    }

    /// Records the state of every thread of `target` as of `now_ns`, before the hooks are
    /// attached: running ('R') or blocked (anything else). The hooks take over from there.
    pub fn seed(&mut self, target: &Live, now_ns: u64) -> Result<()> {
        let slot = target.slot;
        let Ok(proc) = procfs::process::Process::new(target.pid as i32) else {
            return Ok(());
        };
        let tasks: Vec<_> = proc.tasks()?.flatten().collect();
        if !target.is_running() {
            return Ok(()); // gone since it was named
        }
        for task in tasks {
            let Ok(stat) = task.stat() else { continue };
            let state = if stat.state == 'R' {
                sched_state::RUNNING
            } else {
                sched_state::BLOCKED
            };
            let tid = task.tid as u32;
            let t = ThreadSched {
                tid,
                slot1: slot + 1,
                state,
                flags: 0,
                since_ns: now_ns,
                cause: tracer_common::block_cause::UNKNOWN,
                _pad: 0,
            };
            // A thread whose set is full gets no seeded state: the hooks count it as lost
            // when they see it.
            super::table_put(
                &mut self.state,
                self.table_entries,
                tid,
                |_| t,
                |e| e.slot1 == 0,
            )?;
            self.comms.insert(task.tid as u32, stat.comm);
        }
        Ok(())
    }

    /// Cumulative counters per slot and per thread, with open intervals up to `now_ns`.
    /// `live` lists the traced processes still running (their threads are looked for in
    /// /proc, so that a thread blocked since tracing started is counted too).
    pub fn sample(
        &mut self,
        live: &[Live],
        now_ns: u64,
    ) -> Result<(BTreeMap<u32, SchedCounts>, BTreeMap<u32, ThreadCounts>)> {
        let mut per_slot: BTreeMap<u32, SchedCounts> = BTreeMap::new();
        for slot in 0..self.slots {
            let c = per_slot.entry(slot).or_default();
            for s in self.totals.get(&slot, 0)?.iter() {
                c.add_raw(s);
            }
        }
        let mut threads: BTreeMap<u32, ThreadCounts> = BTreeMap::new();
        let mut latest = HashMap::new();
        for entry in self.threads.iter() {
            let (tid, s) = entry?;
            latest.insert(tid, (s.cond_addr, s.pool_wait_ns));
            let mut counts = SchedCounts::default();
            counts.add_raw(&s);
            let end = s.comm.iter().position(|&b| b == 0).unwrap_or(s.comm.len());
            if end > 0 {
                self.comms
                    .insert(tid, String::from_utf8_lossy(&s.comm[..end]).into_owned());
            }
            threads.insert(
                tid,
                ThreadCounts {
                    slot: s.slot,
                    pid: s.tgid,
                    comm: String::new(),
                    alive: false,
                    counts,
                    pool_addr: s.pool_addr,
                    cpu_without_syscalls_ns: 0,
                },
            );
        }
        // Reclaimed threads: their counters, plus any the kernel has added since (a last
        // switch-out after the reclaim). A later thread of another process given the id
        // has its own entry; the ended one is then gone from the lists.
        let mut shadowed = Vec::new();
        for (tid, kept) in &self.ended {
            match threads.get_mut(tid) {
                None => {
                    threads.insert(*tid, kept.clone());
                }
                Some(t) if t.pid == kept.pid && t.slot == kept.slot => t.counts.add(&kept.counts),
                Some(_) => shadowed.push(*tid),
            }
        }
        for tid in shadowed {
            self.ended.remove(&tid);
            self.ended_dropped += 1;
        }
        // Threads alive now, including those no hook has seen yet (of the traced processes
        // themselves: not of a later process given one's pid).
        for who in live {
            let (pid, slot) = (who.pid, who.slot);
            let Ok(proc) = procfs::process::Process::new(pid as i32) else {
                continue;
            };
            let Ok(tasks) = proc.tasks() else { continue };
            let tasks: Vec<_> = tasks.flatten().collect();
            // Listed before this check: the tasks were the process's, not a later one's.
            if !who.is_running() {
                continue;
            }
            for task in tasks {
                let tid = task.tid as u32;
                let t = threads.entry(tid).or_insert_with(|| ThreadCounts {
                    slot,
                    pid,
                    comm: String::new(),
                    alive: true,
                    counts: SchedCounts::default(),
                    pool_addr: 0,
                    cpu_without_syscalls_ns: 0,
                });
                t.alive = true;
                if let Some(c) = thread_comm(pid, tid) {
                    self.comms.insert(tid, c);
                }
            }
        }
        // Names of threads no longer listed (ended, and not kept by --threads) go.
        self.comms.retain(|tid, _| threads.contains_key(tid));
        for (tid, t) in threads.iter_mut() {
            t.comm = self.comms.get(tid).cloned().unwrap_or_default();
            if !t.alive {
                continue;
            }
            let Some(st) = super::table_get(&self.state, self.table_entries, *tid)? else {
                continue;
            };
            if st.slot1 == t.slot + 1 {
                let mut open = SchedCounts::default();
                open.add_open(st.state, st.cause, st.since_ns, now_ns);
                t.counts.add(&open);
                if let Some(&(cond, longest_ns)) = latest.get(tid) {
                    let waiting = open.blocked_by[block_cause::CONDITION as usize];
                    t.pool_addr = roles::pool_word(t.pool_addr, longest_ns, cond, waiting);
                }
                per_slot.entry(t.slot).or_default().add(&open);
            }
        }
        Ok((per_slot, threads))
    }

    /// Whether thread `tid` has ended and given back its kernel entry, its counters kept
    /// here.
    pub fn is_reclaimed(&self, tid: u32) -> bool {
        self.ended.contains_key(&tid)
    }

    /// Ended threads dropped from the lists so far (beyond [`MAX_ENDED_THREADS`]).
    pub fn ended_dropped(&self) -> u64 {
        self.ended_dropped
    }

    /// After a report: threads of `sample` that ended and were quiet since the last call
    /// give back their kernel entries (so the preallocated map holds live threads, not
    /// history); their counters stay here, the busiest [`MAX_ENDED_THREADS`] of them.
    pub fn reclaim(&mut self, sample: &BTreeMap<u32, ThreadCounts>) {
        let mut quiet = HashMap::new();
        for (tid, t) in sample.iter().filter(|(_, t)| !t.alive) {
            let wall = t.counts.wall_ns();
            if self
                .ended
                .get(tid)
                .is_some_and(|k| k.counts.wall_ns() == wall)
            {
                continue; // reclaimed already, nothing new
            }
            if self.quiet.get(tid) == Some(&wall) {
                if self.threads.remove(tid).is_ok() || self.ended.contains_key(tid) {
                    self.ended.insert(*tid, t.clone());
                }
            } else {
                quiet.insert(*tid, wall);
            }
        }
        self.quiet = quiet;
        if self.ended.len() > MAX_ENDED_THREADS {
            let mut by_wall: Vec<(u64, u32)> = self
                .ended
                .iter()
                .map(|(tid, t)| (t.counts.wall_ns(), *tid))
                .collect();
            by_wall.sort_unstable();
            let excess = self.ended.len() - MAX_ENDED_THREADS;
            for (_, tid) in by_wall.into_iter().take(excess) {
                self.ended.remove(&tid);
            }
            self.ended_dropped += excess as u64;
        }
    }
}
