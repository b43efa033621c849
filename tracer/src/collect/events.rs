//! Decoding ring-buffer records into model events: length checked, read unaligned, kind
//! matched through `TryFrom`, never transmuted.
use std::mem::size_of;

use aya::maps::{MapData, RingBuf};
use tracer_common::event::{self, Event, Header, Kind};

use crate::model::events::{EventData, RawEvent};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("event of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("{kind:?} event of {len} bytes, expected {want}")]
    Truncated { kind: Kind, len: usize, want: usize },
}

fn read<T: Copy>(bytes: &[u8], kind: Kind) -> Result<Event<T>, DecodeError> {
    let want = size_of::<Event<T>>();
    if bytes.len() < want {
        return Err(DecodeError::Truncated {
            kind,
            len: bytes.len(),
            want,
        });
    }
    // SAFETY: the length was checked; Event<T> is repr(C) plain data; read_unaligned makes
    // no alignment assumption about the ring buffer's bytes.
    Ok(unsafe { bytes.as_ptr().cast::<Event<T>>().read_unaligned() })
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<RawEvent, DecodeError> {
    if bytes.len() < size_of::<Header>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: as in `read`.
    let header = unsafe { bytes.as_ptr().cast::<Header>().read_unaligned() };
    let kind = Kind::try_from(header.kind).map_err(DecodeError::UnknownKind)?;
    let data = match kind {
        Kind::Fork => EventData::Fork(read::<event::Fork>(bytes, kind)?.data),
        Kind::Exec => EventData::Exec(read::<event::Exec>(bytes, kind)?.data),
        Kind::Exit => EventData::Exit(read::<event::Exit>(bytes, kind)?.data),
        Kind::Signal => EventData::Signal(read::<event::Signal>(bytes, kind)?.data),
        Kind::OomKill => EventData::OomKill(read::<event::OomKill>(bytes, kind)?.data),
    };
    Ok(RawEvent { header, data })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a repr(C) plain-data value.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()).to_vec() }
    }

    #[test]
    fn exit_event_round_trips() {
        let header = Header {
            kind: Kind::Exit as u32,
            slot: 0,
            ts_ns: 42,
            tid: 7,
            tgid: 7,
        };
        let ev = Event {
            header,
            data: event::Exit {
                exit_code: 3 << 8,
                group_dead: 1,
            },
        };
        let mut b = bytes_of(&ev);
        b.push(0xAA); // ring-buffer records may be padded: extra bytes are ignored
        let got = decode(&b).unwrap();
        assert_eq!(got.header, header);
        assert_eq!(
            got.data,
            EventData::Exit(event::Exit {
                exit_code: 3 << 8,
                group_dead: 1
            })
        );
    }

    #[test]
    fn oom_kill_event_round_trips() {
        let mut name = [0u8; 64];
        name[..4].copy_from_slice(b"test");
        let data = event::OomKill {
            anon_rss: 64 << 20,
            file_rss: 4096,
            shmem_rss: 0,
            swap: 0,
            total_vm: 1 << 30,
            cgroup_id: 1234,
            traced: 1,
            _pad: 0,
            comm: *b"tracer-workload\0",
            cgroup_name: name,
        };
        let ev = Event {
            header: Header {
                kind: Kind::OomKill as u32,
                slot: 0,
                ts_ns: 2_000_000_000,
                tid: 77,
                tgid: 77,
            },
            data,
        };
        let got = decode(&bytes_of(&ev)).unwrap();
        assert_eq!(got.data, EventData::OomKill(data));
        let r = crate::model::memory::OomReport::from_event(&got, 1_000_000_000, &|id| {
            (id == 1234).then(|| "/a/test".to_string())
        })
        .unwrap();
        assert_eq!(
            (r.pid, r.comm.as_str(), r.traced),
            (77, "tracer-workload", true)
        );
        assert_eq!(
            (r.anon_rss_bytes, r.cgroup.as_str(), r.t_s),
            (64 << 20, "/a/test", 1.0)
        );
        let r = crate::model::memory::OomReport::from_event(&got, 0, &|_| None).unwrap();
        assert_eq!(r.cgroup, "test", "falls back to the kernel's name");
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        assert_eq!(decode(&[1, 2, 3]), Err(DecodeError::Short(3)));
        let mut h = bytes_of(&Header {
            kind: 99,
            slot: 0,
            ts_ns: 0,
            tid: 0,
            tgid: 0,
        });
        assert_eq!(decode(&h), Err(DecodeError::UnknownKind(99)));
        h = bytes_of(&Header {
            kind: Kind::Signal as u32,
            slot: 0,
            ts_ns: 0,
            tid: 0,
            tgid: 0,
        });
        assert!(matches!(
            decode(&h),
            Err(DecodeError::Truncated {
                kind: Kind::Signal,
                ..
            })
        ));
    }
}
