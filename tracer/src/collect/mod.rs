//! Reads the kernel's aggregate maps into a [`Sample`]: the only code that knows how the
//! counters are laid out in maps. Discrete events are decoded in [`events`].
pub mod events;
pub mod memory;
pub mod proc;

use anyhow::{Result, anyhow};
use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray, PerCpuHashMap},
};
use tracer_common::{DROP_KINDS, Drop, ErrnoKey, SYSCALL_SLOTS, SyscallStats, maps};

use crate::model::{Drops, Sample, SyscallCounts};

pub struct Collector {
    stats: PerCpuArray<MapData, SyscallStats>,
    errnos: PerCpuHashMap<MapData, ErrnoKey, u64>,
    drops: PerCpuArray<MapData, u64>,
    slots: u32,
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

impl Collector {
    pub fn new(ebpf: &mut Ebpf, slots: u32) -> Result<Self> {
        Ok(Self {
            stats: take(ebpf, maps::SYSCALL_STATS)?,
            errnos: take(ebpf, maps::ERRNOS)?,
            drops: take(ebpf, maps::DROPS)?,
            slots,
        })
    }

    /// Reads everything, summed over CPUs.
    pub fn sample(&self) -> Result<Sample> {
        let mut sample = Sample::default();
        for idx in 0..self.slots * SYSCALL_SLOTS {
            let per_cpu = self.stats.get(&idx, 0)?;
            let mut counts: Option<SyscallCounts> = None;
            for s in per_cpu.iter().filter(|s| s.calls > 0) {
                counts
                    .get_or_insert_with(SyscallCounts::default)
                    .add_raw(s.calls, s.errors, s.total_ns, s.max_ns, &s.hist);
            }
            if let Some(c) = counts {
                sample
                    .syscalls
                    .insert((idx / SYSCALL_SLOTS, idx % SYSCALL_SLOTS), c);
            }
        }
        for entry in self.errnos.iter() {
            let (key, per_cpu) = entry?;
            let n: u64 = per_cpu.iter().sum();
            let k = (key.stats_idx / SYSCALL_SLOTS, key.stats_idx % SYSCALL_SLOTS);
            if let Some(c) = sample.syscalls.get_mut(&k) {
                *c.errnos.entry(key.errno).or_default() += n;
            }
        }
        let mut drops = [0u64; DROP_KINDS as usize];
        for (i, d) in drops.iter_mut().enumerate() {
            *d = self.drops.get(&(i as u32), 0)?.iter().sum();
        }
        sample.drops = Drops {
            errno_map_full: drops[Drop::ErrnoMapFull as usize],
            thread_out_of_range: drops[Drop::ThreadOutOfRange as usize],
            ring_buffer_full: drops[Drop::RingBufFull as usize],
            mem_slot_out_of_range: drops[Drop::MemSlotOutOfRange as usize],
        };
        Ok(sample)
    }
}
