//! Reads the loop threads' map (`LOOPS`, an LRU by tid: see `tracer_common::loops`).
use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use aya::{
    Ebpf,
    maps::{HashMap as BpfHashMap, MapData},
};
use tracer_common::{loops::LoopState, maps};

use super::take;
use crate::model::loops::LoopCounts;

pub struct LoopCollector {
    /// An LRU hash map in the kernel; read like any hash map.
    map: BpfHashMap<MapData, u32, LoopState>,
    /// Thread names by tid, read from /proc once per thread (with its process id, so that
    /// a later thread given the id is named afresh).
    comms: HashMap<u32, (u32, String)>,
}

impl LoopCollector {
    pub fn new(ebpf: &mut Ebpf) -> Result<Self> {
        Ok(Self {
            map: take(ebpf, maps::LOOPS)?,
            comms: HashMap::new(),
        })
    }

    /// Every loop thread's counters, with its iteration open at `now_ns`.
    pub fn sample(&mut self, now_ns: u64) -> Result<BTreeMap<u32, LoopCounts>> {
        let mut out = BTreeMap::new();
        for entry in self.map.iter() {
            let (tid, s) = entry?;
            let task = format!("/proc/{}/task/{tid}", s.tgid);
            let alive = std::path::Path::new(&task).exists();
            let comm = match self.comms.get(&tid) {
                Some((pid, c)) if *pid == s.tgid => c.clone(),
                _ => {
                    let c = std::fs::read_to_string(format!("{task}/comm"))
                        .map(|c| c.trim_end().to_string())
                        .unwrap_or_default();
                    self.comms.insert(tid, (s.tgid, c.clone()));
                    c
                }
            };
            out.insert(tid, LoopCounts::of(&s, comm, now_ns, alive));
        }
        // Names of threads the map has forgotten go too.
        self.comms.retain(|tid, _| out.contains_key(tid));
        Ok(out)
    }
}
