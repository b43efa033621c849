//! Draining the ring buffer; each record is decoded by [`tracer_common::event::decode`].
use aya::maps::{MapData, RingBuf};
use tracer_common::event::{RawEvent, decode};

/// Drains the ring buffer.
pub struct EventReader {
    pub ring: RingBuf<MapData>,
    /// Records that could not be decoded (a version mismatch would show here).
    pub undecodable: u64,
}

impl EventReader {
    pub fn drain(&mut self, out: &mut Vec<RawEvent>) {
        while let Some(item) = self.ring.next() {
            match decode(&item) {
                Ok(e) => out.push(e),
                Err(_) => self.undecodable += 1,
            }
        }
    }
}
