//! The call stream (`--trace`, strace mode): what userspace sets in the kernel side's
//! `STREAM` global (which calls, which filters), and the record of one call that sys_exit
//! sends through its own ring buffer, [`crate::maps::STREAM_RING`] (not the life events').

/// Selection bits: x86_64 numbers `0..SYSCALL_SLOTS`, then i386 numbers.
pub const SELECT_BITS: usize = 2 * crate::SYSCALL_SLOTS as usize;
/// errnos that `--errno` can name (the kernel's stop below 4096).
pub const ERRNO_BITS: usize = 4096;
/// Path arguments captured per call (`rename` has two).
pub const MAX_PATHS: usize = 2;
/// Bytes of a path shown; a longer one is marked cut (strace's `"..."...`).
pub const PATH_SHOWN: usize = 256;
/// What is read of a path: one byte more than shown (to tell a cut one), and its NUL.
pub const PATH_READ: u32 = PATH_SHOWN as u32 + 2;
/// The buffer of one path in a record (8-byte aligned).
pub const PATH_BUF: usize = 264;
/// Default size of the ring buffer (`--trace-buffer`), bytes.
pub const RING_BYTES_DEFAULT: u32 = 8 << 20;

/// Set by userspace at load time; in .rodata, so with `enabled == 0` the verifier drops
/// the stream's code from sys_enter and sys_exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    pub enabled: u32,
    /// Only calls that fail (`--failed`).
    pub failed_only: u32,
    /// Only calls that fail with an errno whose bit is set in `errnos` (`--errno`).
    pub errno_filter: u32,
    /// A call's start is the one the aggregate took, if it timed the call (within its
    /// thread's budget, or sampled); else not known: no clock read at entry for every
    /// call when only failures are kept (`--failed`, `--errno` without `--slower-than`).
    pub sampled_start: u32,
    /// Only calls that took at least this long (`--slower-than`); 0: all.
    pub min_ns: u64,
    /// Which syscalls are streamed, a bit per number (see [`SELECT_BITS`]).
    pub select: [u64; SELECT_BITS / 64],
    pub errnos: [u64; ERRNO_BITS / 64],
    /// Per syscall number (as `select`): which arguments are paths to capture, as
    /// `index + 1` in the low nibble (first path) and the high nibble (second); 0: none.
    pub paths: [u8; SELECT_BITS],
}
const _: () = assert!(core::mem::size_of::<StreamConfig>() == 24 + 128 + 512 + 1024);

/// [`CallRecord::dur_ns`] of a call whose start was not taken (see
/// [`StreamConfig::sampled_start`]).
pub const DUR_UNKNOWN: u64 = u64::MAX;

impl StreamConfig {
    /// The stream off: what the kernel side's global holds until userspace sets it.
    pub const OFF: StreamConfig = StreamConfig {
        enabled: 0,
        failed_only: 0,
        errno_filter: 0,
        sampled_start: 0,
        min_ns: 0,
        select: [0; SELECT_BITS / 64],
        errnos: [0; ERRNO_BITS / 64],
        paths: [0; SELECT_BITS],
    };

    /// The selection bit of syscall `nr` (an i386 number when `compat`).
    pub const fn bit(nr: u64, compat: bool) -> usize {
        (nr as usize + if compat { SELECT_BITS / 2 } else { 0 }) & (SELECT_BITS - 1)
    }

    /// Which arguments of the syscall at `bit` are paths: their indexes + 1 (0: none).
    pub fn path_args(&self, bit: usize) -> (usize, usize) {
        let p = match self.paths.get(bit) {
            Some(&p) => p,
            None => 0,
        };
        ((p & 0xf) as usize, (p >> 4) as usize)
    }
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self::OFF
    }
}

/// When a selected call without path arguments began, in [`crate::maps::STREAM_START`]
/// (its arguments are read at exit, from the same registers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStart {
    pub tid: u32,
    pub _pad: u32,
    pub start_ns: u64,
}
const _: () = assert!(core::mem::size_of::<CallStart>() == 16);

/// Bit of [`CallRecord::nr`] saying the number is an i386 one.
pub const NR_COMPAT: u32 = 1 << 31;

/// One streamed call: the header always, then as many path buffers as the call has
/// path arguments (the record is cut after them).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Syscall number, with [`NR_COMPAT`] for a 32-bit call.
    pub nr: u32,
    pub tid: u32,
    pub tgid: u32,
    /// How many of `paths` are filled (0 to [`MAX_PATHS`]).
    pub npaths: u32,
    /// Monotonic ns at entry (at exit when the start is not known), and the call's
    /// duration ([`DUR_UNKNOWN`] when its start is not known).
    pub start_ns: u64,
    pub dur_ns: u64,
    pub ret: i64,
    /// The six raw arguments (a 32-bit call's zero-extended).
    pub args: [u64; 6],
    /// Calls lost on this CPU (ring buffer full) since the last record sent from it: said
    /// in the stream before this call.
    pub lost_before: u64,
    pub comm: [u8; 16],
    /// Per path: bytes read including the NUL (at most [`PATH_READ`]), or a negative
    /// errno when the read failed (a bad pointer).
    pub path_len: [i32; MAX_PATHS],
    pub paths: [[u8; PATH_BUF]; MAX_PATHS],
}
/// Bytes of a record without paths.
pub const HEADER_BYTES: usize = 120;
const _: () = assert!(core::mem::size_of::<CallRecord>() == HEADER_BYTES + 2 * PATH_BUF);
const _: () = assert!(core::mem::offset_of!(CallRecord, paths) == HEADER_BYTES);

/// Why a call selected for the stream was not sent. Index into
/// [`crate::maps::STREAM_LOST`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// The ring buffer was full at sys_exit.
    RingFull = 0,
    /// The table of calls in progress could not take the call at sys_enter, or its entry
    /// was another thread's by its exit.
    PendingFull = 1,
}
pub const LOST_KINDS: u32 = 2;

impl CallRecord {
    /// Decodes a record read from the ring buffer: at least the header, and the paths it
    /// says it has (a shorter record, or one that claims more, is refused).
    pub fn decode(bytes: &[u8]) -> Option<CallRecord> {
        if bytes.len() < HEADER_BYTES {
            return None;
        }
        let mut buf = [0u8; core::mem::size_of::<CallRecord>()];
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        // SAFETY: the buffer is the record's size; every field is an integer or an array
        // of them, for which any bytes are a valid value.
        let r: CallRecord = unsafe { core::ptr::read_unaligned(buf.as_ptr().cast()) };
        let npaths = r.npaths as usize;
        if npaths > MAX_PATHS || bytes.len() < HEADER_BYTES + npaths * PATH_BUF {
            return None;
        }
        Some(r)
    }

    /// Path `i`: its bytes (without the NUL, at most [`PATH_SHOWN`]) and whether it was
    /// cut; `Err(errno)` when it could not be read, None when the call has no such path.
    pub fn path(&self, i: usize) -> Option<Result<(&[u8], bool), i32>> {
        if i >= self.npaths as usize {
            return None;
        }
        let len = *self.path_len.get(i)?;
        if len < 0 {
            return Some(Err(len.saturating_neg()));
        }
        let buf = self.paths.get(i)?;
        let with_nul = (len as usize).min(PATH_READ as usize);
        let text = with_nul.saturating_sub(1);
        // The string ends at its first NUL whatever the length said.
        let end = buf[..text].iter().position(|&b| b == 0).unwrap_or(text);
        let cut = end > PATH_SHOWN;
        Some(Ok((&buf[..end.min(PATH_SHOWN)], cut)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(r: &CallRecord, len: usize) -> [u8; core::mem::size_of::<CallRecord>()] {
        let mut b = [0u8; core::mem::size_of::<CallRecord>()];
        // SAFETY: a plain-integer struct read as bytes.
        let all =
            unsafe { core::slice::from_raw_parts((r as *const CallRecord).cast::<u8>(), b.len()) };
        b[..len].copy_from_slice(&all[..len]);
        b
    }

    #[test]
    fn records_decode_from_their_header_and_paths() {
        let mut r = CallRecord {
            nr: 82,
            tid: 7,
            tgid: 7,
            npaths: 1,
            start_ns: 1,
            dur_ns: 2,
            ret: -2,
            args: [1, 2, 3, 4, 5, 6],
            lost_before: 0,
            comm: [0; 16],
            path_len: [4, i32::MIN],
            paths: [[0; PATH_BUF]; MAX_PATHS],
        };
        r.paths[0][..3].copy_from_slice(b"/ab");
        let one = HEADER_BYTES + PATH_BUF;
        let b = bytes(&r, one);
        assert_eq!(CallRecord::decode(&b[..HEADER_BYTES - 1]), None);
        assert_eq!(CallRecord::decode(&b[..one - 1]), None);
        let d = CallRecord::decode(&b[..one]).unwrap();
        assert_eq!(d.path(0), Some(Ok((&b"/ab"[..], false))));
        assert_eq!(d.path(1), None);
        r.npaths = 2;
        let d = CallRecord::decode(&bytes(&r, HEADER_BYTES + 2 * PATH_BUF)).unwrap();
        assert_eq!(d.path(1), Some(Err(i32::MAX)));
        r.npaths = 3;
        assert_eq!(
            CallRecord::decode(&bytes(&r, HEADER_BYTES + 2 * PATH_BUF)),
            None
        );
        // A path longer than shown is cut there.
        r.npaths = 1;
        r.paths[0] = [b'a'; PATH_BUF];
        r.path_len[0] = PATH_READ as i32;
        let d = CallRecord::decode(&bytes(&r, one)).unwrap();
        let (p, cut) = d.path(0).unwrap().unwrap();
        assert!(cut && p.len() == PATH_SHOWN);
    }
}
