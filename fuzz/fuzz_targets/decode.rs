//! Fuzzes the ring-buffer record decoder with arbitrary bytes, checking what it promises:
//! a record decodes to the kind its header names, from bytes within the input, and encodes
//! back to those bytes; anything shorter than a record of its kind, or of an unknown kind,
//! is the matching error. The same bytes go to the call stream's record decoder
//! (`CallRecord::decode`, `--trace`): a record decodes only from at least its header and
//! the buffers it claims, and its paths, argv entries and addresses stay within them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer_common::{
    event::{DecodeError, EventData, Header, Kind, decode},
    stream::{
        ADDR_READ, ARG_BUF, ARGV_SHOWN, CallRecord, HEADER_BYTES, MAX_PATHS, PATH_BUF, PATH_SHOWN,
    },
};

const HEADER: usize = size_of::<Header>();

fn call_record(data: &[u8]) {
    match CallRecord::decode(data) {
        Some(r) => {
            let n = r.nbufs as usize;
            assert!(n <= MAX_PATHS && data.len() >= HEADER_BYTES + n * PATH_BUF);
            for i in 0..MAX_PATHS {
                assert!(r.kind(i).is_none() || i < n);
                match r.path(i) {
                    None => {}
                    Some(Ok((bytes, _cut))) => {
                        assert!(i < n && bytes.len() <= PATH_SHOWN && !bytes.contains(&0))
                    }
                    Some(Err(e)) => assert!(i < n && e > 0),
                }
            }
            if let Some(Ok((entries, _more))) = r.argv() {
                assert!(entries <= ARGV_SHOWN);
                for i in 0..ARGV_SHOWN {
                    match r.argv_entry(i) {
                        None => assert!(i >= entries),
                        Some(Ok((bytes, _cut))) => {
                            assert!(bytes.len() < ARG_BUF && !bytes.contains(&0))
                        }
                        Some(Err(e)) => assert!(e > 0),
                    }
                }
            }
            if let Some(Ok((bytes, _len))) = r.addr() {
                assert!(bytes.len() <= ADDR_READ);
            }
        }
        None => assert!(
            data.len() < HEADER_BYTES
                || data
                    .get(12)
                    .is_some_and(|&n| n as usize > MAX_PATHS || data.len() < HEADER_BYTES + n as usize * PATH_BUF)
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    call_record(data);
    let tag = data
        .get(..4)
        .map(|b| u32::from_ne_bytes(b.try_into().unwrap()));
    for len in 0..HEADER.min(data.len()) {
        assert_eq!(decode(&data[..len]), Err(DecodeError::Short(len)));
    }
    match decode(data) {
        Ok(ev) => {
            assert_eq!(Some(ev.header.kind), tag);
            let kind = Kind::try_from(ev.header.kind).unwrap();
            assert!(matches!(
                (kind, ev.data),
                (Kind::Fork, EventData::Fork(_))
                    | (Kind::Exec, EventData::Exec(_))
                    | (Kind::Exit, EventData::Exit(_))
                    | (Kind::Signal, EventData::Signal(_))
                    | (Kind::OomKill, EventData::OomKill(_))
                    | (Kind::Taken, EventData::Taken(_))
                    | (Kind::Stall, EventData::Stall(_))
                    | (Kind::Crash, EventData::Crash(_))
            ));
            // Re-encoded, it is the input's first bytes: it was read from those alone.
            let (bytes, len) = ev.encode();
            assert!((HEADER + 1..=data.len()).contains(&len));
            assert_eq!(&bytes[..len], &data[..len]);
            // Exactly those bytes decode to it; one fewer is a truncated record.
            assert_eq!(decode(&data[..len]), Ok(ev));
            assert_eq!(
                decode(&data[..len - 1]),
                Err(DecodeError::Truncated {
                    kind,
                    len: len - 1,
                    want: len
                })
            );
        }
        Err(DecodeError::Short(len)) => assert!(len == data.len() && len < HEADER),
        Err(DecodeError::UnknownKind(k)) => {
            assert!(data.len() >= HEADER && Some(k) == tag);
            assert!(Kind::try_from(k).is_err());
        }
        Err(DecodeError::Truncated { kind, len, want }) => {
            assert!(len == data.len() && (HEADER..want).contains(&len));
            assert_eq!(Some(kind as u32), tag);
        }
    }
});
