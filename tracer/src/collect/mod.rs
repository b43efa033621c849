//! Reads the kernel's aggregate maps into a [`Sample`]: the only code that knows how the
//! counters are laid out in maps. Discrete events are decoded in [`events`].
pub mod anatomy;
pub mod events;
pub mod fds;
pub mod loops;
pub mod memory;
pub mod proc;
pub mod procs;
pub mod sched;
pub mod stack;
pub mod stream;
pub mod threads;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Result, anyhow};
use aya::{
    Ebpf,
    maps::{Array, MapData, PerCpuArray, PerCpuHashMap},
};
use tracer_common::{
    COMPAT_IDX, DROP_KINDS, Drop, ErrnoKey, SYSCALL_SLOTS, SyscallStats, maps,
    table::{self, Tagged},
};

use crate::model::{Drops, Sample, SyscallCounts, sched::ThreadCounts};

pub struct Collector {
    stats: PerCpuArray<MapData, SyscallStats>,
    compat_stats: PerCpuHashMap<MapData, u32, SyscallStats>,
    errnos: PerCpuHashMap<MapData, ErrnoKey, u64>,
    drops: PerCpuArray<MapData, u64>,
    sched: Option<sched::SchedCollector>,
    loops: Option<loops::LoopCollector>,
    thread_calls: Option<threads::ThreadCallsCollector>,
    /// Each thread's on-CPU time since its latest syscall (with `thread_calls`).
    silent: crate::model::sched::SilentRuns,
    slots: u32,
    /// Each loaded program's name and fdinfo (see [`skipped_runs`]).
    programs: Vec<(&'static str, PathBuf)>,
}

pub fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
    ebpf: &mut Ebpf,
    name: &str,
) -> Result<T> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| anyhow!("map {name} missing from the eBPF object"))?;
    Ok(T::try_from(map)?)
}

/// Writes `value(index)` as `id`'s entry of a per-id table (see [`tracer_common::table`]): over its
/// own entry, else over the first of its set that `free` accepts. Its index; None when the
/// set is full. The kernel side's placement, so that its lookups find the entry.
pub fn table_put<T: Tagged + aya::Pod>(
    map: &mut Array<MapData, T>,
    entries: u32,
    id: u32,
    value: impl FnOnce(u32) -> T,
    free: impl Fn(&T) -> bool,
) -> Result<Option<u32>> {
    let base = table::set_base(id, entries);
    let set = (base..base + table::WAYS)
        .map(|i| map.get(&i, 0))
        .collect::<Result<Vec<T>, _>>()?;
    match table::place(&set, id, free) {
        Some(w) => {
            map.set(base + w as u32, value(base + w as u32), 0)?;
            Ok(Some(base + w as u32))
        }
        None => Ok(None),
    }
}

/// `id`'s entry of a per-id table, if it has one.
pub fn table_get<T: Tagged + aya::Pod>(
    map: &Array<MapData, T>,
    entries: u32,
    id: u32,
) -> Result<Option<T>> {
    let base = table::set_base(id, entries);
    for i in base..base + table::WAYS {
        let e = map.get(&i, 0)?;
        if e.tag() == id {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

impl Collector {
    /// `sched`: the scheduling section is on; `loops`: loop threads are followed (the
    /// syscall hooks are); `thread_calls`: per-thread syscall tables are kept
    /// (`--threads`); `programs`: the loaded programs' fdinfo.
    pub fn new(
        ebpf: &mut Ebpf,
        slots: u32,
        table_entries: u32,
        sched: bool,
        loops: bool,
        thread_calls: bool,
        programs: Vec<(&'static str, PathBuf)>,
    ) -> Result<Self> {
        Ok(Self {
            stats: take(ebpf, maps::SYSCALL_STATS)?,
            compat_stats: take(ebpf, maps::COMPAT_STATS)?,
            errnos: take(ebpf, maps::ERRNOS)?,
            drops: take(ebpf, maps::DROPS)?,
            sched: if sched {
                Some(sched::SchedCollector::new(ebpf, slots, table_entries)?)
            } else {
                None
            },
            loops: if loops {
                Some(loops::LoopCollector::new(ebpf)?)
            } else {
                None
            },
            thread_calls: if thread_calls {
                Some(threads::ThreadCallsCollector::new(ebpf)?)
            } else {
                None
            },
            silent: Default::default(),
            slots,
            programs,
        })
    }

    /// After a report (with `--threads`): ended threads give back their kernel entries.
    pub fn reclaim_threads(&mut self, threads: &BTreeMap<u32, ThreadCounts>) {
        if let Some(s) = self.sched.as_mut() {
            s.reclaim(threads);
            // Their syscall rows too (a row of the kernel map costs two syscalls to read).
            if let Some(t) = self.thread_calls.as_mut() {
                t.reclaim(|tid| s.is_reclaimed(tid));
            }
        }
    }

    /// Records the current state of `target`'s threads (before the hooks attach).
    pub fn seed(&mut self, target: &proc::Live, now_ns: u64) -> Result<()> {
        match self.sched.as_mut() {
            Some(s) => s.seed(target, now_ns),
            None => Ok(()),
        }
    }

    /// Reads everything, summed over CPUs. `live` lists the traced processes; `now_ns` is
    /// the monotonic time of the reading.
    pub fn sample(&mut self, live: &[proc::Live], now_ns: u64) -> Result<Sample> {
        let mut sample = Sample::default();
        if let Some(s) = self.sched.as_mut() {
            let (per_slot, threads) = s.sample(live, now_ns)?;
            sample.sched = Some(per_slot);
            sample.threads = threads;
            sample.threads_dropped = s.ended_dropped();
        }
        if let Some(l) = self.loops.as_mut() {
            sample.loops = l.sample(now_ns)?;
        }
        if let Some(t) = self.thread_calls.as_mut() {
            sample.thread_calls = t.sample()?;
            self.silent
                .observe(&mut sample.threads, &sample.thread_calls);
        }
        let native = (0..self.slots * SYSCALL_SLOTS)
            .map(|idx| Ok((idx, self.stats.get(&idx, 0)?)))
            .collect::<Result<Vec<_>>>()?;
        let compat = self.compat_stats.iter().collect::<Result<Vec<_>, _>>()?;
        for (idx, per_cpu) in native.into_iter().chain(compat) {
            let mut counts: Option<SyscallCounts> = None;
            for s in per_cpu.iter().filter(|s| s.calls > 0) {
                counts.get_or_insert_with(SyscallCounts::default).add_raw(s);
            }
            if let Some(c) = counts {
                sample.syscalls.insert(row_key(idx), c);
            }
        }
        for entry in self.errnos.iter() {
            let (key, per_cpu) = entry?;
            let n: u64 = per_cpu.iter().sum();
            if let Some(c) = sample.syscalls.get_mut(&row_key(key.stats_idx)) {
                *c.errnos.entry(key.errno).or_default() += n;
            }
        }
        let mut drops = [0u64; DROP_KINDS as usize];
        for (i, d) in drops.iter_mut().enumerate() {
            *d = self.drops.get(&(i as u32), 0)?.iter().sum();
        }
        sample.drops = Drops {
            errno_map_full: drops[Drop::ErrnoMapFull as usize],
            thread_table_full: drops[Drop::ThreadTableFull as usize],
            ring_buffer_full: drops[Drop::RingBufFull as usize],
            thread_stats_full: drops[Drop::ThreadStatsFull as usize],
            mem_slot_out_of_range: drops[Drop::MemSlotOutOfRange as usize],
            task_stack_unreadable: drops[Drop::TaskStackUnreadable as usize],
            fds_unscanned: drops[Drop::FdsUnscanned as usize],
            compat_rows_full: drops[Drop::CompatRowsFull as usize],
            thread_calls_full: drops[Drop::ThreadCallsFull as usize],
            skipped_runs: self.programs.iter().map(|(_, p)| skipped_runs(p)).sum(),
            life_events_missed: self
                .programs
                .iter()
                .filter(|(name, _)| crate::probes::LIFE_SECONDS.contains(name))
                .map(|(_, p)| skipped_runs(p))
                .sum(),
            // Counted by the ring buffer's reader, not in the kernel.
            undecodable_events: 0,
        };
        Ok(sample)
    }
}

/// The sample's key of a kernel aggregate index: (slot, syscall number), i386 numbers
/// moved up by `SYSCALL_SLOTS` (see [`crate::model::Abi`]).
fn row_key(idx: u32) -> (u32, u32) {
    let abi = if idx & COMPAT_IDX != 0 {
        SYSCALL_SLOTS
    } else {
        0
    };
    let idx = idx & !COMPAT_IDX;
    (idx / SYSCALL_SLOTS, abi + idx % SYSCALL_SLOTS)
}

/// Runs of a program the kernel skipped because a run of the same program was in progress
/// on that CPU (`recursion_misses` in its fdinfo, from Linux 5.12). Programs on syscall
/// tracepoints can be preempted where those tracepoints may fault (Linux 7.3 here, not
/// 6.18): while one is, that CPU's other syscalls go unseen.
fn skipped_runs(fdinfo: &Path) -> u64 {
    std::fs::read_to_string(fdinfo)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("recursion_misses:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}
