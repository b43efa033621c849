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
    /// A hash map in the kernel.
    map: BpfHashMap<MapData, ThreadCallKey, ThreadCalls>,
    /// The rows of threads that ended and gave their kernel rows back (with their
    /// scheduling entries, see [`Self::reclaim`]): their final counts.
    ended: BTreeMap<(u32, u32), ThreadCallCounts>,
    /// The rows read last, by tid.
    last: BTreeMap<u32, Vec<ThreadCallKey>>,
}

impl ThreadCallsCollector {
    pub fn new(ebpf: &mut Ebpf) -> Result<Self> {
        Ok(Self {
            map: take(ebpf, maps::THREAD_CALLS)?,
            ended: BTreeMap::new(),
            last: BTreeMap::new(),
        })
    }

    /// After a report: the rows of threads whose scheduling entries were reclaimed
    /// (`reclaimed(tid)`: ended, and kept in userspace) leave the kernel map for
    /// userspace too, so that the map, read at every report, holds live threads' rows;
    /// kept rows of threads no longer kept go.
    pub fn reclaim(&mut self, reclaimed: impl Fn(u32) -> bool) {
        for (tid, keys) in &self.last {
            if !reclaimed(*tid) {
                continue;
            }
            for k in keys {
                if let Ok(c) = self.map.get(k, 0) {
                    self.ended.insert((k.tid, k.nr), counts(&c));
                    let _ = self.map.remove(k);
                }
            }
        }
        self.ended.retain(|(tid, _), _| reclaimed(*tid));
    }

    /// Every (thread, syscall) row, cumulative.
    pub fn sample(&mut self) -> Result<BTreeMap<(u32, u32), ThreadCallCounts>> {
        let mut out = self.ended.clone();
        self.last.clear();
        for entry in self.map.iter() {
            let (k, c) = entry?;
            self.last.entry(k.tid).or_default().push(k);
            out.insert((k.tid, k.nr), counts(&c));
        }
        Ok(out)
    }
}

/// A kernel row as the model counts it.
fn counts(c: &ThreadCalls) -> ThreadCallCounts {
    ThreadCallCounts {
        pid: c.tgid,
        calls: c.calls,
        errors: c.errors,
        total_ns: c.total_ns,
    }
}
