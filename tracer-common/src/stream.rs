//! The call stream (`--trace`, strace mode): what userspace sets in the kernel side's
//! `STREAM` global (which calls, which filters), and the record of one call that sys_exit
//! sends through its own ring buffer, [`crate::maps::STREAM_RING`] (not the life events').

/// Selection bits: x86_64 numbers `0..SYSCALL_SLOTS`, then i386 numbers.
pub const SELECT_BITS: usize = 2 * crate::SYSCALL_SLOTS as usize;
/// errnos that `--errno` can name (the kernel's stop below 4096).
pub const ERRNO_BITS: usize = 4096;
/// Buffers of user memory captured per call: paths (`rename` has two), `execve`'s argv,
/// a socket address.
pub const MAX_PATHS: usize = 2;
/// Bytes of a path shown; a longer one is marked cut (strace's `"..."...`).
pub const PATH_SHOWN: usize = 256;
/// What is read of a path: one byte more than shown (to tell a cut one), and its NUL.
pub const PATH_READ: u32 = PATH_SHOWN as u32 + 2;
/// The buffer of one path in a record (8-byte aligned).
pub const PATH_BUF: usize = 264;

/// Entries of `execve`'s argv captured, and the bytes of each (with its NUL): a longer
/// one is marked cut, as strace's `-s` does (an entry of exactly `ARG_BUF - 1` bytes
/// too: the read cannot tell it from a longer one).
pub const ARGV_SHOWN: usize = 8;
pub const ARG_BUF: usize = 32;
/// In an argv buffer, after the entries: each entry's read result (bytes with the NUL,
/// or a negative errno), one `i8` each.
pub const ARGV_LENS: usize = ARGV_SHOWN * ARG_BUF;
/// Bit of an argv buffer's length: the array goes on after the entries captured.
pub const ARGV_MORE: i32 = 1 << 8;
/// Bytes of a socket address captured (`sockaddr_un` is 110, `sockaddr_in6` 28).
pub const ADDR_READ: usize = 127;
/// In an address buffer, at this offset: the address length the call had (its argument,
/// or what the kernel wrote to its `socklen_t *`), a `u32`.
pub const ADDR_LEN_AT: usize = 256;
const _: () = assert!(ARGV_LENS + ARGV_SHOWN <= PATH_BUF && ADDR_LEN_AT + 4 <= PATH_BUF);

/// What a record's buffer holds ([`CallRecord::kinds`]).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    /// A NUL-terminated path; its length is the bytes read with the NUL.
    Path = 0,
    /// `execve`'s first [`ARGV_SHOWN`] argv entries, [`ARG_BUF`] bytes each; its length
    /// is how many entries the array had before its NULL (at most [`ARGV_SHOWN`]), with
    /// [`ARGV_MORE`] when more follow.
    Argv = 1,
    /// A socket address (at most [`ADDR_READ`] bytes, its length the bytes read), and
    /// the call's address length at [`ADDR_LEN_AT`].
    Addr = 2,
}

/// A nibble of [`StreamConfig::paths`] with this bit names an argv array, not a path.
pub const ARG_IS_ARGV: u8 = 8;
/// A high nibble of [`StreamConfig::addrs`] with this bit names a `socklen_t *` (the
/// kernel writes the address: read at exit, from a call that succeeded).
pub const LEN_IS_PTR: u8 = 8;
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
    /// Only failures are kept (`--failed`, `--errno` without `--slower-than`): a call
    /// without arguments to capture at entry is seen at its exit only, if it failed, and
    /// its start is the one the aggregate took, if it timed the call (within its thread's
    /// budget, or sampled); else not known.
    pub sampled_start: u32,
    /// Only calls that took at least this long (`--slower-than`); 0: all.
    pub min_ns: u64,
    /// Which syscalls are streamed, a bit per number (see [`SELECT_BITS`]).
    pub select: [u64; SELECT_BITS / 64],
    pub errnos: [u64; ERRNO_BITS / 64],
    /// Per syscall number (as `select`): which arguments are paths to capture at entry, as
    /// `index + 1` in the low nibble (first path) and the high nibble (second, or with
    /// [`ARG_IS_ARGV`] `execve`'s argv); 0: none.
    pub paths: [u8; SELECT_BITS],
    /// Per syscall number: which argument is a socket address to capture at exit, as
    /// `index + 1` in the low nibble, and its length's in the high nibble (with
    /// [`LEN_IS_PTR`] when the argument points to it); 0: none.
    pub addrs: [u8; SELECT_BITS],
    /// Each sent call carries its user stack (`--stack`, see [`STACK_FRAMES`]).
    pub stack: u32,
    pub _pad_stack: u32,
}
const _: () = assert!(core::mem::size_of::<StreamConfig>() == 24 + 128 + 512 + 2 * 1024 + 8);

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
        addrs: [0; SELECT_BITS],
        stack: 0,
        _pad_stack: 0,
    };

    /// The selection bit of syscall `nr` (an i386 number when `compat`).
    pub const fn bit(nr: u64, compat: bool) -> usize {
        (nr as usize + if compat { SELECT_BITS / 2 } else { 0 }) & (SELECT_BITS - 1)
    }

    /// Which arguments of the syscall at `bit` are paths: their nibbles (index + 1, the
    /// second with [`ARG_IS_ARGV`] for an argv), 0: none.
    pub fn path_args(&self, bit: usize) -> (usize, usize) {
        nibbles(self.paths.get(bit))
    }

    /// Which argument of the syscall at `bit` is a socket address, and its length's
    /// (index + 1, the second with [`LEN_IS_PTR`]), 0: none.
    pub fn addr_args(&self, bit: usize) -> (usize, usize) {
        nibbles(self.addrs.get(bit))
    }
}

#[inline(always)]
fn nibbles(v: Option<&u8>) -> (usize, usize) {
    let p = match v {
        Some(&p) => p,
        None => 0,
    };
    ((p & 0xf) as usize, (p >> 4) as usize)
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

/// One streamed call: the header always, then as many buffers as the call captured
/// (paths, argv, a socket address; the record is cut after them).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Syscall number, with [`NR_COMPAT`] for a 32-bit call.
    pub nr: u32,
    pub tid: u32,
    pub tgid: u32,
    /// How many of `bufs` are filled (0 to [`MAX_PATHS`]), and what each holds ([`Buf`]).
    pub nbufs: u8,
    pub kinds: [u8; MAX_PATHS],
    pub _pad: u8,
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
    /// Per buffer: for a path, bytes read including the NUL (at most [`PATH_READ`]); for
    /// the others see [`Buf`]; a negative errno when the read failed (a bad pointer).
    pub buf_len: [i32; MAX_PATHS],
    /// With `--stack` only (else not set): bytes of user stack that follow the buffers
    /// sent (8 per frame, innermost first, at most [`STACK_FRAMES`]), or a negative errno
    /// when the kernel could not take it.
    pub stack_len: i32,
    pub _pad_stack: u32,
    pub bufs: [[u8; PATH_BUF]; MAX_PATHS],
}
/// Bytes of a record without buffers.
pub const HEADER_BYTES: usize = 128;
const _: () = assert!(core::mem::size_of::<CallRecord>() == HEADER_BYTES + 2 * PATH_BUF);
const _: () = assert!(core::mem::offset_of!(CallRecord, bufs) == HEADER_BYTES);

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

/// User frames sent with a call (`--stack`): `bpf_get_stack` keeps the innermost ones.
pub const STACK_FRAMES: usize = 64;
/// A record with the most paths and frames: what the kernel side's scratch for `--stack`
/// holds.
pub const STACKED_BYTES: usize = HEADER_BYTES + MAX_PATHS * PATH_BUF + STACK_FRAMES * 8;

impl CallRecord {
    /// Decodes a record read from the ring buffer: at least the header, and the buffers it
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
        let n = r.nbufs as usize;
        if n > MAX_PATHS || bytes.len() < HEADER_BYTES + n * PATH_BUF {
            return None;
        }
        Some(r)
    }

    /// The user stack that follows the buffers of a record sent with `--stack` (`bytes` as
    /// read from the ring): its return addresses, innermost first, or the errno the kernel
    /// gave when it could not take it. A length beyond what was read is cut to it.
    pub fn stack(&self, bytes: &[u8]) -> Result<impl Iterator<Item = u64>, i32> {
        if self.stack_len < 0 {
            return Err(self.stack_len.saturating_neg());
        }
        let at = HEADER_BYTES + (self.nbufs as usize).min(MAX_PATHS) * PATH_BUF;
        let tail = bytes.get(at..).unwrap_or(&[]);
        let n = (self.stack_len as usize)
            .min(tail.len())
            .min(STACK_FRAMES * 8)
            / 8;
        Ok(tail[..n * 8]
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])))
    }

    /// What buffer `i` holds, if the record has it (an unknown kind: None).
    pub fn kind(&self, i: usize) -> Option<Buf> {
        if i >= self.nbufs as usize {
            return None;
        }
        match self.kinds.get(i)? {
            0 => Some(Buf::Path),
            1 => Some(Buf::Argv),
            2 => Some(Buf::Addr),
            _ => None,
        }
    }

    /// The `i`th buffer that holds `kind`: its index.
    pub fn nth(&self, kind: Buf, i: usize) -> Option<usize> {
        (0..MAX_PATHS)
            .filter(|&b| self.kind(b) == Some(kind))
            .nth(i)
    }

    /// Path `i` (the `i`th buffer holding a path): its bytes (without the NUL, at most
    /// [`PATH_SHOWN`]) and whether it was cut; `Err(errno)` when it could not be read,
    /// None when the call has no such path.
    pub fn path(&self, i: usize) -> Option<Result<(&[u8], bool), i32>> {
        let b = self.nth(Buf::Path, i)?;
        let len = *self.buf_len.get(b)?;
        if len < 0 {
            return Some(Err(len.saturating_neg()));
        }
        Some(Ok(string(self.bufs.get(b)?, len, PATH_SHOWN)))
    }

    /// `execve`'s argv: how many entries were captured and whether more follow;
    /// `Err(errno)` when the array could not be read, None when the call has none.
    pub fn argv(&self) -> Option<Result<(usize, bool), i32>> {
        let b = self.nth(Buf::Argv, 0)?;
        let len = *self.buf_len.get(b)?;
        if len < 0 {
            return Some(Err(len.saturating_neg()));
        }
        Some(Ok((
            ((len & 0xff) as usize).min(ARGV_SHOWN),
            len & ARGV_MORE != 0,
        )))
    }

    /// argv entry `i` (below what [`argv`](Self::argv) counts): its bytes (without the
    /// NUL, at most `ARG_BUF - 1`) and whether it was cut, or `Err(errno)`.
    pub fn argv_entry(&self, i: usize) -> Option<Result<(&[u8], bool), i32>> {
        let (n, _) = self.argv()?.ok()?;
        if i >= n {
            return None;
        }
        let buf = self.bufs.get(self.nth(Buf::Argv, 0)?)?;
        let got = buf[ARGV_LENS + i] as i8 as i32;
        if got < 0 {
            return Some(Err(got.saturating_neg()));
        }
        let at = i * ARG_BUF;
        Some(Ok(string(&buf[at..at + ARG_BUF], got, ARG_BUF - 1)))
    }

    /// The socket address: its bytes (at most [`ADDR_READ`]) and the call's address
    /// length; `Err(errno)` when it could not be read, None when the call has none.
    pub fn addr(&self) -> Option<Result<(&[u8], u32), i32>> {
        let b = self.nth(Buf::Addr, 0)?;
        let len = *self.buf_len.get(b)?;
        if len < 0 {
            return Some(Err(len.saturating_neg()));
        }
        let buf = self.bufs.get(b)?;
        let claimed = u32::from_ne_bytes([
            buf[ADDR_LEN_AT],
            buf[ADDR_LEN_AT + 1],
            buf[ADDR_LEN_AT + 2],
            buf[ADDR_LEN_AT + 3],
        ]);
        Some(Ok((&buf[..(len as usize).min(ADDR_READ)], claimed)))
    }
}

/// A NUL-terminated string read into `buf` (`len`: bytes read with the NUL): its bytes
/// up to its first NUL, at most `shown`, and whether it was longer.
fn string(buf: &[u8], len: i32, shown: usize) -> (&[u8], bool) {
    let with_nul = (len.max(0) as usize).min(buf.len());
    let text = with_nul.saturating_sub(1);
    // The string ends at its first NUL whatever the length said.
    let end = buf[..text].iter().position(|&b| b == 0).unwrap_or(text);
    // Filled to the last byte: cut there (a path is read one byte beyond what is shown).
    let cut = end > shown || (shown + 1 == buf.len() && end == shown);
    (&buf[..end.min(shown)], cut)
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

    fn record() -> CallRecord {
        CallRecord {
            nr: 82,
            tid: 7,
            tgid: 7,
            nbufs: 1,
            kinds: [Buf::Path as u8; MAX_PATHS],
            _pad: 0,
            start_ns: 1,
            dur_ns: 2,
            ret: -2,
            args: [1, 2, 3, 4, 5, 6],
            lost_before: 0,
            comm: [0; 16],
            buf_len: [4, i32::MIN],
            stack_len: 0,
            _pad_stack: 0,
            bufs: [[0; PATH_BUF]; MAX_PATHS],
        }
    }

    #[test]
    fn records_decode_from_their_header_and_paths() {
        let mut r = record();
        r.bufs[0][..3].copy_from_slice(b"/ab");
        let one = HEADER_BYTES + PATH_BUF;
        let b = bytes(&r, one);
        assert_eq!(CallRecord::decode(&b[..HEADER_BYTES - 1]), None);
        assert_eq!(CallRecord::decode(&b[..one - 1]), None);
        let d = CallRecord::decode(&b[..one]).unwrap();
        assert_eq!(d.path(0), Some(Ok((&b"/ab"[..], false))));
        assert_eq!(d.path(1), None);
        assert_eq!(d.argv(), None);
        assert_eq!(d.addr(), None);
        r.nbufs = 2;
        let d = CallRecord::decode(&bytes(&r, HEADER_BYTES + 2 * PATH_BUF)).unwrap();
        assert_eq!(d.path(1), Some(Err(i32::MAX)));
        r.nbufs = 3;
        assert_eq!(
            CallRecord::decode(&bytes(&r, HEADER_BYTES + 2 * PATH_BUF)),
            None
        );
        // A path longer than shown is cut there.
        r.nbufs = 1;
        r.bufs[0] = [b'a'; PATH_BUF];
        r.buf_len[0] = PATH_READ as i32;
        let d = CallRecord::decode(&bytes(&r, one)).unwrap();
        let (p, cut) = d.path(0).unwrap().unwrap();
        assert!(cut && p.len() == PATH_SHOWN);
    }

    #[test]
    fn argv_and_addresses_decode_from_their_buffers() {
        let mut r = record();
        // execve: a path, then argv ["ls", <31 bytes or more>, <unreadable>], more after.
        r.nbufs = 2;
        r.kinds = [Buf::Path as u8, Buf::Argv as u8];
        r.bufs[0][..3].copy_from_slice(b"/ls");
        r.buf_len[1] = 3 | ARGV_MORE;
        let argv = &mut r.bufs[1];
        argv[..3].copy_from_slice(b"ls\0");
        argv[ARG_BUF..2 * ARG_BUF].copy_from_slice(&[b'x'; ARG_BUF]);
        argv[2 * ARG_BUF - 1] = 0;
        argv[ARGV_LENS] = 3;
        argv[ARGV_LENS + 1] = ARG_BUF as u8;
        argv[ARGV_LENS + 2] = -14i8 as u8;
        let d = CallRecord::decode(&bytes(&r, HEADER_BYTES + 2 * PATH_BUF)).unwrap();
        assert_eq!(d.path(0), Some(Ok((&b"/ls"[..], false))));
        assert_eq!(d.path(1), None);
        assert_eq!(d.argv(), Some(Ok((3, true))));
        assert_eq!(d.argv_entry(0), Some(Ok((&b"ls"[..], false))));
        assert_eq!(d.argv_entry(1), Some(Ok((&[b'x'; ARG_BUF - 1][..], true))));
        assert_eq!(d.argv_entry(2), Some(Err(14)));
        assert_eq!(d.argv_entry(3), None);
        r.buf_len[1] = -14;
        assert_eq!(r.argv(), Some(Err(14)));
        assert_eq!(r.argv_entry(0), None);
        // An address: 16 bytes read, the call said 16.
        r.nbufs = 1;
        r.kinds = [Buf::Addr as u8, 0];
        r.buf_len[0] = 16;
        r.bufs[0][..4].copy_from_slice(&[2, 0, 0x1f, 0x90]);
        r.bufs[0][ADDR_LEN_AT..ADDR_LEN_AT + 4].copy_from_slice(&16u32.to_ne_bytes());
        let d = CallRecord::decode(&bytes(&r, HEADER_BYTES + PATH_BUF)).unwrap();
        let (a, len) = d.addr().unwrap().unwrap();
        assert_eq!((a.len(), &a[..4], len), (16, &[2, 0, 0x1f, 0x90][..], 16));
        assert_eq!(d.path(0), None);
        // An unknown kind is no buffer at all.
        r.kinds = [9, 0];
        assert_eq!((r.kind(0), r.addr(), r.path(0)), (None, None, None));
    }

    #[test]
    fn a_stack_follows_the_buffers_sent() {
        let mut r = CallRecord::decode(&[0u8; HEADER_BYTES]).unwrap();
        r.nbufs = 1;
        r.stack_len = 24;
        let mut b = [0u8; HEADER_BYTES + PATH_BUF + 24];
        for (i, f) in [0x1111u64, 0x2222, 0x3333].iter().enumerate() {
            let at = HEADER_BYTES + PATH_BUF + 8 * i;
            b[at..at + 8].copy_from_slice(&f.to_ne_bytes());
        }
        assert!(r.stack(&b).unwrap().eq([0x1111, 0x2222, 0x3333]));
        // Cut to what was read; an errno said as one.
        assert!(r.stack(&b[..b.len() - 3]).unwrap().eq([0x1111, 0x2222]));
        r.stack_len = -14;
        assert_eq!(r.stack(&b).err(), Some(14));
    }
}
