//! The memory section's collection: the kernel's per-process memory maps, the /proc
//! readings (baseline and every tick), and OOM-kill cgroup names, into a [`MemSample`].
use std::{collections::BTreeMap, time::Instant};

use anyhow::Result;
use aya::{
    Ebpf,
    maps::{Array, MapData, PerCpuArray},
};
use tracer_common::{
    event::{EventData, RawEvent},
    maps,
    memory::{MemSyscalls, RssSnapshot},
};

use super::{
    anatomy,
    proc::{self, CgroupNames, CgroupRoots, Live},
    take,
};
use crate::model::{
    Sample,
    anatomy::{
        Anatomy, Household, MEMBERS_READ, MemberAnatomy, Orphan, RawAnatomy, ZombieChildren,
    },
    memory::{
        EMFILE, ENFILE, KernelMem, MemSample, MemTrack, ProcMemory, fd_report, memory_report,
    },
};

/// A process's anatomy: its first reading (the base of its regions' growth) and its last,
/// with when its socket tables were read and whether the process has ended since; its
/// household (children's exits, zombies and parent) and what the last reading found of it.
#[derive(Default)]
struct AnatomyReadings {
    start: Option<RawAnatomy>,
    last: Option<(RawAnatomy, Instant, bool)>,
    household: Household,
    kin: (ZombieChildren, Option<Orphan>),
}

impl AnatomyReadings {
    /// Reads the process again (at `at_ns`, monotonic) while it runs; once it has ended,
    /// its last reading stays, marked so.
    fn refresh(&mut self, who: &Live, at_ns: u64) {
        let prev = self.last.as_ref().map(|(a, at, _)| (a, *at));
        let now = (who.pid != 0 && who.is_running())
            .then(|| anatomy::read(who.pid, who.start_ticks, prev))
            .flatten();
        match now {
            Some((now, net_at)) => {
                if self.start.is_none() {
                    self.start = Some(now.clone());
                }
                self.kin = self.household.observe(&now, self.start.as_ref(), at_ns);
                self.last = Some((now, net_at, false));
            }
            None => {
                if let Some((_, _, ended)) = &mut self.last {
                    *ended = true;
                }
            }
        }
    }

    /// The anatomy of its last reading.
    fn report(&self) -> Option<Anatomy> {
        self.last.as_ref().map(|(now, _, ended)| Anatomy {
            ended: *ended,
            zombie_children: self.kin.0.clone(),
            orphaned: self.kin.1.clone(),
            ..Anatomy::build(now, self.start.as_ref())
        })
    }
}

pub struct MemoryCollector {
    syscalls: Array<MapData, MemSyscalls>,
    rss: PerCpuArray<MapData, RssSnapshot>,
    roots: CgroupRoots,
    names: CgroupNames,
    /// The process and its track, per target slot.
    tracks: Vec<(Live, MemTrack)>,
    /// Per slot, its anatomy's readings.
    anatomy: Vec<AnatomyReadings>,
    /// Selectors' processes whose anatomy is read (at most `MEMBERS_READ` a selector).
    members: Vec<(Live, AnatomyReadings)>,
    started: Instant,
    page_size: u64,
}

impl MemoryCollector {
    pub fn new(ebpf: &mut Ebpf, page_size: u32) -> Result<Self> {
        let roots = CgroupRoots::find();
        Ok(Self {
            syscalls: take(ebpf, maps::MEM_SYSCALLS)?,
            rss: take(ebpf, maps::RSS)?,
            names: CgroupNames::new(roots.clone()),
            roots,
            tracks: Vec::new(),
            anatomy: Vec::new(),
            members: Vec::new(),
            started: Instant::now(),
            page_size: page_size as u64,
        })
    }

    /// The baseline of a process about to be traced (call just before adding it to the
    /// filter, in slot order). `launched`: it is parked before its exec.
    pub fn baseline(&mut self, who: &Live, launched: bool) {
        let pid = who.pid;
        let r = proc::read(who, 0.0, &self.roots, true, true);
        let mut track = MemTrack::new(launched, r);
        if launched {
            // Its exec will close the close-on-exec descriptors (tracer's own, copied by
            // the fork), and the kernel side counts those closes. Offset them in advance,
            // so that counts and the peak start from what the command itself begins with.
            track.fd_seed = proc::cloexec_fds(pid);
            let slot = self.tracks.len() as u32;
            let seed = MemSyscalls {
                fds_opened: track.fd_seed,
                ..Default::default()
            };
            if let Err(e) = self.syscalls.set(slot, seed, 0) {
                eprintln!("tracer: cannot set the descriptor baseline: {e}");
            }
        }
        self.tracks.push((who.clone(), track));
        // Its anatomy's growth counts from now; a launched command's, from its first
        // reading after its exec (before it, it is a copy of tracer).
        let start = (!launched)
            .then(|| anatomy::read(pid, who.start_ticks, None))
            .flatten()
            .map(|(a, _)| a);
        self.anatomy.push(AnatomyReadings {
            start,
            ..Default::default()
        });
    }

    /// Counting starts now: times of readings are relative to this.
    pub fn start_clock(&mut self, at: Instant) {
        self.started = at;
    }

    /// Reads /proc for every traced process (call every tick, and once at the end before
    /// reaping a launched command, so that its zombie's final counts are read). `full`:
    /// also the descriptor count; otherwise the previous one is kept.
    pub fn tick(&mut self, full: bool) {
        let t = self.started.elapsed().as_secs_f64();
        for (who, track) in &mut self.tracks {
            // Gone from /proc: keep the last counts, but no memory any more.
            let alive = track.last.as_ref().is_some_and(|l| l.rss.is_some());
            match proc::read(who, t, &self.roots, full, false) {
                Some(mut r) => {
                    if let Some(prev) = &track.last {
                        if !full {
                            r.fds = prev.fds;
                        }
                        // A zombie has left its cgroup (/proc shows the root): keep the last.
                        if r.rss.is_none() {
                            r.cgroup = prev.cgroup.clone();
                        }
                    }
                    track.push(r)
                }
                None if alive => {
                    let mut gone = track.last.clone().unwrap_or_default();
                    gone.t_s = t;
                    gone.rss = None;
                    track.push(gone);
                }
                None => {}
            }
        }
    }

    /// Reads the kernel's counters of one slot.
    fn kernel(&self, slot: u32) -> KernelMem {
        let mut k = KernelMem {
            sys: self.syscalls.get(&slot, 0).unwrap_or_default(),
            ..Default::default()
        };
        if let Ok(per_cpu) = self.rss.get(&slot, 0) {
            for s in per_cpu.iter() {
                k.add_cpu_snapshot(s);
            }
        }
        k
    }

    /// Takes new events: a SIGCHLD to a traced process is its child's exit (the kernel
    /// generates it in the exiting child, so its sender is the child).
    pub fn events(&mut self, events: &[RawEvent]) {
        const SIGCHLD: u32 = 17;
        for e in events {
            if let EventData::Signal(s) = e.data
                && s.sig == SIGCHLD
                && s.from_kernel != 0
                && let Some(slot) = self
                    .tracks
                    .iter()
                    .position(|(who, _)| who.pid == e.header.tgid)
            {
                self.anatomy[slot]
                    .household
                    .child_exited(s.sender_tgid, e.header.ts_ns);
            }
        }
    }

    /// Each traced process's memory and descriptors since tracing started, and the paths
    /// of the memory cgroups of the OOM kills among `events`. `cumulative` is the sample
    /// since the start (for EMFILE/ENFILE counts); `at_ns` the reading's monotonic time.
    /// `live`: the traced processes, of which the selectors' (a few each) are read too.
    pub fn read(
        &mut self,
        cumulative: &Sample,
        events: &[RawEvent],
        at_ns: u64,
        live: &[Live],
    ) -> MemSample {
        // What each process is made of now, read while it runs (a selector's slot is of
        // many processes, and has none); once it has ended, its last reading.
        for (slot, (who, _)) in self.tracks.iter().enumerate() {
            self.anatomy[slot].refresh(who, at_ns);
        }
        // A few of each selector's processes: those read already, while they run, then
        // the first others taken in, in the order they were.
        let own_slots = self.tracks.len() as u32;
        self.members
            .retain(|(m, _)| m.is_running() && live.iter().any(|l| l.pid == m.pid));
        for l in live.iter().filter(|l| l.slot >= own_slots && l.pid != 0) {
            let known = self.members.iter().any(|(m, _)| m.pid == l.pid);
            let of_slot = self
                .members
                .iter()
                .filter(|(m, _)| m.slot == l.slot)
                .count();
            if !known && of_slot < MEMBERS_READ {
                self.members.push((l.clone(), AnatomyReadings::default()));
            }
        }
        for (who, a) in &mut self.members {
            a.refresh(who, at_ns);
        }
        let members = self
            .members
            .iter()
            .filter_map(|(who, a)| {
                Some(MemberAnatomy {
                    slot: who.slot,
                    pid: who.pid,
                    anatomy: a.report()?,
                })
            })
            .collect();
        let errors = |slot: usize, errno: u32| -> u64 {
            cumulative
                .syscalls
                .iter()
                .filter(|((s, _), _)| *s == slot as u32)
                .map(|(_, c)| c.errnos.get(&errno).copied().unwrap_or(0))
                .sum()
        };
        for (slot, (_, track)) in self.tracks.iter_mut().enumerate() {
            track.note_emfile(errors(slot, EMFILE));
        }
        let procs = self
            .tracks
            .iter()
            .enumerate()
            .map(|(slot, (_, track))| {
                let k = self.kernel(slot as u32);
                let errors = |errno: u32| errors(slot, errno);
                ProcMemory {
                    memory: memory_report(track, &k, self.page_size),
                    fds: fd_report(track, &k, errors(EMFILE), errors(ENFILE)),
                    anatomy: self.anatomy[slot].report(),
                }
            })
            .collect();
        let mut cgroups = BTreeMap::new();
        for e in events {
            if let EventData::OomKill(k) = e.data
                && let Some(path) = self.names.resolve(k.cgroup_id)
            {
                cgroups.insert(k.cgroup_id, path);
            }
        }
        MemSample {
            procs,
            cgroups,
            members,
        }
    }
}
