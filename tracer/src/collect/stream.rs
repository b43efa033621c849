//! Draining the call stream's ring buffer (`--trace`): each record decoded, the losses the
//! kernel counted where they happened put in the stream before the record that carries
//! them, and the totals read at the end.
use anyhow::Result;
use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray, RingBuf},
};
use tracer_common::{
    maps,
    stream::{CallRecord, LOST_KINDS, Lost},
};

use crate::model::strace::{Call, Item, StreamSummary};

pub struct StreamReader {
    pub ring: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
    summary: StreamSummary,
    /// Ring losses said in the stream so far.
    lost_said: u64,
    /// `-y`: the descriptors named at decode time.
    fds: Option<super::fds::FdNames>,
    /// `--stack`: the symbolizer of the calls' stacks.
    stacks: Option<super::stack::Stacks>,
}

impl StreamReader {
    pub fn new(ebpf: &mut Ebpf) -> Result<Self> {
        Ok(Self {
            ring: super::take(ebpf, maps::STREAM_RING)?,
            lost: super::take(ebpf, maps::STREAM_LOST)?,
            summary: StreamSummary::default(),
            lost_said: 0,
            fds: None,
            stacks: None,
        })
    }

    /// Names the calls' descriptors (`-y` is 1, `-yy` 2).
    pub fn decode_fds(mut self, level: u8) -> Self {
        self.fds = (level > 0).then(|| super::fds::FdNames::new(level));
        self
    }

    /// Shows each call's user stack (`--stack`).
    pub fn stacks(mut self, on: bool) -> Self {
        self.stacks = on.then(super::stack::Stacks::new);
        self
    }

    /// Takes what the ring holds, up to `max` records; `wall_offset_ns` turns monotonic
    /// times into wall ones.
    pub fn drain(&mut self, wall_offset_ns: i128, max: usize, out: &mut Vec<Item>) {
        if let Some(f) = self.fds.as_mut() {
            f.batch();
        }
        if let Some(s) = self.stacks.as_mut() {
            s.batch();
        }
        for _ in 0..max {
            let Some(bytes) = self.ring.next() else {
                break;
            };
            let Some(r) = CallRecord::decode(&bytes) else {
                self.summary.undecodable += 1;
                continue;
            };
            if r.lost_before > 0 {
                self.lost_said += r.lost_before;
                out.push(Item::Lost(r.lost_before));
            }
            self.summary.streamed += 1;
            let fds = self
                .fds
                .as_mut()
                .map(|f| f as &mut dyn crate::model::strace::fds::FdNamer);
            let mut call = Call::from_record_named(&r, wall_offset_ns, fds);
            if let Some(s) = self.stacks.as_mut() {
                use crate::model::strace::stack::{self, Symbolize};
                let end_ns = call.mono_ns.saturating_add(call.duration_ns.unwrap_or(0));
                let frames = r.stack(&bytes).map(|a| {
                    let addrs: Vec<u64> = a.collect();
                    s.frames(r.tgid, stack::walked(&addrs), end_ns)
                });
                if frames.is_err() {
                    self.summary.stacks_lost += 1;
                }
                call.set_stack(frames);
            }
            out.push(Item::Call(Box::new(call)));
        }
    }

    /// At the end (after a last [`drain`](Self::drain)): the totals, and the ring losses
    /// no later record carried (said at the end of the stream).
    pub fn finish(&mut self, out: &mut Vec<Item>) -> Result<StreamSummary> {
        let mut by_cause = [0u64; LOST_KINDS as usize];
        for (i, total) in by_cause.iter_mut().enumerate() {
            *total = self.lost.get(&(i as u32), 0)?.iter().sum();
        }
        self.summary.lost_ring_full = by_cause[Lost::RingFull as usize];
        self.summary.lost_pending_full = by_cause[Lost::PendingFull as usize];
        let unsaid = self.summary.lost_ring_full.saturating_sub(self.lost_said);
        if unsaid > 0 {
            self.lost_said += unsaid;
            out.push(Item::Lost(unsaid));
        }
        Ok(self.summary)
    }
}
