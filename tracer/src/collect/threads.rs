//! Reads the per-thread syscall tables (`THREAD_CALLS`, `--threads`).
use std::collections::BTreeMap;

use anyhow::Result;
use aya::{
    Ebpf,
    maps::{HashMap as BpfHashMap, MapData},
};
use tracer_common::{
    maps,
    threads::{ThreadCallKey, ThreadCalls},
};

use super::take;
use crate::model::sched::ThreadCallCounts;

pub struct ThreadCallsCollector {
    /// An LRU hash map in the kernel; read like any hash map.
    map: BpfHashMap<MapData, ThreadCallKey, ThreadCalls>,
}

impl ThreadCallsCollector {
    pub fn new(ebpf: &mut Ebpf) -> Result<Self> {
        Ok(Self {
            map: take(ebpf, maps::THREAD_CALLS)?,
        })
    }

    /// Every (thread, syscall) row, cumulative.
    pub fn sample(&self) -> Result<BTreeMap<(u32, u32), ThreadCallCounts>> {
        let mut out = BTreeMap::new();
        for entry in self.map.iter() {
            let (k, c) = entry?;
            out.insert(
                (k.tid, k.nr),
                ThreadCallCounts {
                    pid: c.tgid,
                    calls: c.calls,
                    errors: c.errors,
                    total_ns: c.total_ns,
                },
            );
        }
        Ok(out)
    }
}
