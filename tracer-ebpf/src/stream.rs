//! The call stream (`--trace`, strace mode). sys_enter hands a traced thread's call here
//! only when the stream is on (`STREAM.enabled`, in .rodata: with it 0 the verifier removes
//! these calls from the syscall hooks, so aggregate mode's hot path is unchanged). A call
//! not selected costs a bit test. A selected one without path arguments costs a clock read
//! and an array store at entry; with paths, its arguments and paths are captured then into
//! a per-CPU scratch record, kept by tid until its exit. When only failures are kept
//! (`--failed`, `--errno` without `--slower-than`), a call without arguments to capture
//! is not handed over at entry at all, and at exit only if it failed: a successful call
//! costs two inline tests more than in aggregate mode. sys_exit applies the filters
//! (`--failed`, `--errno` before any helper call, then `--slower-than`) and sends what
//! passes through a ring buffer of its own. `execve`'s argv is captured at entry with its
//! path; a socket address at exit (one the kernel writes exists only then, one the
//! program passed is still there). A call the ring cannot take is counted, per
//! CPU, and the count rides on the next record sent from that CPU (where the stream says
//! it).
use aya_ebpf::{
    bindings::BPF_ANY,
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, generated},
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
    programs::RawTracePointContext,
};
use tracer_common::{
    COMPAT_IDX, MAX_THREADS, SYSCALL_SLOTS,
    stream::{
        ADDR_LEN_AT, ADDR_READ, ARG_BUF, ARG_IS_ARGV, ARGV_LENS, ARGV_MORE, ARGV_SHOWN, Buf,
        CallRecord, CallStart, DUR_UNKNOWN, ERRNO_BITS, HEADER_BYTES, LEN_IS_PTR, LOST_KINDS, Lost,
        NR_COMPAT, PATH_BUF, PATH_READ, RING_BYTES_DEFAULT, SELECT_BITS, StreamConfig,
    },
};

use crate::{
    events::{offsets, opaque, read_at, rodata},
    filter::noted_entry,
};

/// Set by userspace at load time (see [`StreamConfig`]).
#[unsafe(no_mangle)]
static STREAM: StreamConfig = StreamConfig::OFF;

/// Sized by userspace (`--trace-buffer`).
#[map(name = "STREAM_RING")]
static STREAM_RING: RingBuf = RingBuf::with_byte_size(RING_BYTES_DEFAULT, 0);

/// The calls in progress that were selected, by tid (LRU: a thread that died inside a
/// call leaves nothing behind for long). Sized down to one entry when the stream is off.
#[map(name = "STREAM_PENDING")]
static STREAM_PENDING: LruHashMap<u32, CallRecord> = LruHashMap::with_max_entries(MAX_THREADS, 0);

/// Indexed like `THREADS` (sized by userspace to its entries; one when the stream is off).
#[map(name = "STREAM_START")]
static STREAM_START: Array<CallStart> = Array::with_max_entries(1, 0);

#[map(name = "STREAM_SCRATCH")]
static STREAM_SCRATCH: PerCpuArray<CallRecord> = PerCpuArray::with_max_entries(1, 0);

/// Calls selected and not sent, by [`Lost`]; index `LOST_KINDS` holds this CPU's ring
/// losses not yet said in the stream.
#[map(name = "STREAM_LOST")]
static STREAM_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOST_KINDS + 1, 0);

const MAX_ERRNO: i64 = 4095;

#[inline(always)]
fn config() -> &'static StreamConfig {
    rodata(&STREAM)
}

#[inline(always)]
pub fn enabled() -> bool {
    config().enabled != 0
}

#[inline(always)]
fn count_lost(why: Lost) {
    if let Some(n) = STREAM_LOST.get_ptr_mut(why as u32) {
        // SAFETY: per-CPU value; programs on one CPU do not run concurrently.
        unsafe { *n += 1 };
    }
}

/// Whether sys_enter hands call `id` to [`on_enter`]: every call, but when only failures
/// are kept and take the aggregate's start (`sampled_start`), only the calls with
/// arguments to capture at entry (paths, argv: a byte of the read-only table, inline);
/// the others are seen at exit only, and only if they failed ([`unnoted_kept`]), so
/// that a successful call costs no call out of the hot path at either end.
#[inline(always)]
pub fn noted_at_entry(id: u64, compat: bool) -> bool {
    let c = config();
    if c.sampled_start == 0 {
        return true;
    }
    let bit = opaque(StreamConfig::bit(id, compat) as u64) as usize & (SELECT_BITS - 1);
    c.paths.get(bit).is_some_and(|&p| p != 0)
}

/// Whether a call [`noted_at_entry`] passed over goes to [`on_exit`]: with
/// `sampled_start`, one that `failed` (the filters are failures only).
#[inline(always)]
pub fn unnoted_kept(failed: bool) -> bool {
    config().sampled_start != 0 && failed
}

/// Whether syscall `id` (an i386 number when `compat`) is selected; if so, notes what
/// [`on_exit`] needs. Out of line: only the stream's calls take it. A call without path
/// arguments has only its start noted, in the entry of [`STREAM_START`] beside its
/// `THREADS` entry (an inlined array store): its arguments are read at exit, from the
/// same registers. A call with paths has them and its arguments captured now (the memory
/// an exec replaces is gone by its exit), kept by tid in [`STREAM_PENDING`].
#[inline(never)]
pub fn on_enter(regs: u64, id: u64, compat: bool, pid_tgid: u64) -> bool {
    // One argument for both (BPF calls take five).
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    if id >= SYSCALL_SLOTS as u64 {
        return false;
    }
    let c = config();
    // Masked after a barrier (see `events::opaque`): the compiler knew `id` below 512 and
    // left the mask out; 5.10's and 6.1's verifiers lost that bound where `id` was
    // spilled before its test ("unbounded memory access").
    let bit = opaque(StreamConfig::bit(id, compat) as u64) as usize & (SELECT_BITS - 1);
    if !selected(c, bit) {
        return false;
    }
    let (first, second) = c.path_args(bit);
    if first == 0 {
        let Some(p) = STREAM_START.get_ptr_mut(noted_entry(regs)) else {
            count_lost(Lost::PendingFull);
            return false;
        };
        // (With `sampled_start` such a call does not come here: see `noted_at_entry`.)
        // SAFETY: reading the monotonic clock has no preconditions.
        let start = unsafe { bpf_ktime_get_ns() };
        // SAFETY: the entry beside the running thread's own THREADS entry.
        unsafe {
            (*p).tid = tid;
            (*p).start_ns = start;
        }
        return true;
    }
    let Some(r) = STREAM_SCRATCH.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: this CPU's scratch record; nothing else runs on this CPU meanwhile.
    let r = unsafe { &mut *r };
    read_args(r, regs, compat);
    r.nr = id as u32 | if compat { NR_COMPAT } else { 0 };
    r.tid = tid;
    r.tgid = tgid;
    r.nbufs = 1;
    r.kinds = [Buf::Path as u8; 2];
    r.buf_len[0] = read_path(r.args.get(first - 1).copied(), &mut r.bufs[0]);
    if second != 0 {
        let arg = r.args.get((second & 7) - 1).copied();
        if second & ARG_IS_ARGV as usize != 0 {
            r.kinds[1] = Buf::Argv as u8;
            r.buf_len[1] = read_argv(arg, compat, &mut r.bufs[1]);
        } else {
            r.buf_len[1] = read_path(arg, &mut r.bufs[1]);
        }
        r.nbufs = 2;
    }
    // SAFETY: reading the monotonic clock has no preconditions.
    r.start_ns = unsafe { bpf_ktime_get_ns() };
    if STREAM_PENDING.insert(&tid, &*r, BPF_ANY as u64).is_err() {
        count_lost(Lost::PendingFull);
        return false;
    }
    true
}

/// Whether the syscall at selection bit `bit` is streamed.
#[inline(always)]
fn selected(c: &StreamConfig, bit: usize) -> bool {
    c.select
        .get(bit / 64)
        .is_some_and(|&word| word & (1 << (bit % 64)) != 0)
}

/// Bytes of `struct pt_regs` read at once for the arguments (x86_64's is 168: every
/// argument register lies within); an offset beyond is read alone.
const REGS_BYTES: usize = 168;

/// The six arguments of the running syscall, from its registers: one read of the block
/// that holds them, rather than one helper call each.
#[inline(always)]
fn read_args(r: &mut CallRecord, regs: u64, compat: bool) {
    let o = offsets();
    let off = if compat {
        [
            o.regs_compat_arg0,
            o.regs_compat_arg1,
            o.regs_compat_arg2,
            o.regs_compat_arg3,
            o.regs_compat_arg4,
            o.regs_compat_arg5,
        ]
    } else {
        [
            o.regs_arg0,
            o.regs_arg1,
            o.regs_arg2,
            o.regs_arg3,
            o.regs_arg4,
            o.regs_arg5,
        ]
    };
    // Into the second buffer (the stack is too small; a second path is read after this,
    // over it).
    let block = &mut r.bufs[1];
    // SAFETY: the helper checks the address; the buffer is larger than REGS_BYTES.
    let got = unsafe {
        generated::bpf_probe_read_kernel(
            block.as_mut_ptr().cast(),
            REGS_BYTES as u32,
            regs as *const core::ffi::c_void,
        )
    } == 0;
    let mut args = [0u64; 6];
    for (a, &o) in args.iter_mut().zip(off.iter()) {
        let at = o as usize;
        let v = match block.get(at..at + 8) {
            Some(b) if got && at + 8 <= REGS_BYTES => {
                u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            _ => read_at::<u64>(regs, o).unwrap_or(0),
        };
        *a = if compat { v & 0xffff_ffff } else { v };
    }
    r.args = args;
}

/// Reads the NUL-terminated user string at `addr` into `buf`: the bytes read with the
/// NUL, or a negative errno.
#[inline(always)]
fn read_path(addr: Option<u64>, buf: &mut [u8; PATH_BUF]) -> i32 {
    let Some(addr) = addr else { return -14 };
    // SAFETY: the helper checks the address; the buffer holds PATH_READ bytes.
    unsafe {
        generated::bpf_probe_read_user_str(
            buf.as_mut_ptr().cast(),
            PATH_READ,
            addr as *const core::ffi::c_void,
        ) as i32
    }
}

/// Reads the first [`ARGV_SHOWN`] entries of the argv array at `addr` (pointers of 4
/// bytes for a 32-bit call) into `buf`: how many the array had before its NULL, with
/// [`ARGV_MORE`] when more follow; a negative errno when the array cannot be read.
#[inline(always)]
fn read_argv(addr: Option<u64>, compat: bool, buf: &mut [u8; PATH_BUF]) -> i32 {
    let Some(addr) = addr else { return -14 };
    let width = if compat { 4 } else { 8 };
    let mut n = 0;
    let mut i = 0;
    while i <= ARGV_SHOWN {
        let Ok(p) = read_user_word(addr + (i * width) as u64, compat) else {
            return if i == 0 { -14 } else { n };
        };
        if p == 0 {
            return n;
        }
        if i == ARGV_SHOWN {
            return n | ARGV_MORE;
        }
        let at = (opaque(i as u64) as usize & (ARGV_SHOWN - 1)) * ARG_BUF;
        let Some(dst) = buf.get_mut(at..at + ARG_BUF) else {
            return n;
        };
        // SAFETY: the helper checks the address; `dst` holds ARG_BUF bytes.
        let got = unsafe {
            generated::bpf_probe_read_user_str(
                dst.as_mut_ptr().cast(),
                ARG_BUF as u32,
                p as *const core::ffi::c_void,
            )
        };
        if let Some(l) = buf.get_mut(ARGV_LENS + (i & (ARGV_SHOWN - 1))) {
            *l = got as i8 as u8;
        }
        n += 1;
        i += 1;
    }
    n
}

/// The user word at `addr`: 8 bytes, or 4 when `four` (a 32-bit process's pointer).
#[inline(always)]
fn read_user_word(addr: u64, four: bool) -> Result<u64, i64> {
    let mut p = 0u64;
    let from = addr as *const core::ffi::c_void;
    let to: *mut core::ffi::c_void = (&mut p as *mut u64).cast();
    // SAFETY: the helper checks the address; `p` holds 8 bytes (4 are read into its low
    // half: x86 is little-endian).
    let rc = unsafe {
        if four {
            generated::bpf_probe_read_user(to, 4, from)
        } else {
            generated::bpf_probe_read_user(to, 8, from)
        }
    };
    if rc == 0 { Ok(p) } else { Err(rc) }
}

/// The socket address argument `addr` (an index + 1) of a call that returned `ret`, with
/// its length from argument `len` (or where it points, with [`LEN_IS_PTR`]), into `r`'s
/// first buffer. An address the kernel writes is read only if the call succeeded.
#[inline(always)]
fn read_addr(r: &mut CallRecord, addr: usize, len: usize, ret: i64) {
    let by_ptr = len & LEN_IS_PTR as usize != 0;
    let (Some(&a), Some(&l)) = (
        r.args.get((addr & 7).wrapping_sub(1)),
        r.args.get((len & 7).wrapping_sub(1)),
    ) else {
        return;
    };
    if a == 0 || (by_ptr && l == 0) {
        return;
    }
    let claimed = if by_ptr {
        // A socklen_t: 4 bytes.
        match read_user_word(l, true) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else {
        l & 0xffff_ffff
    };
    // A call that failed wrote no address: its length is still shown (what the program
    // passed), as strace shows it.
    let readable = if by_ptr && ret < 0 { 0 } else { claimed };
    let want = if readable > ADDR_READ as u64 {
        ADDR_READ as u64
    } else {
        readable
    };
    // Masked after a barrier: the verifiers need the size's bound on the register itself.
    let want = opaque(want) as u32 & ADDR_READ as u32;
    let buf = &mut r.bufs[0];
    // SAFETY: the helper checks the address; the buffer holds more than ADDR_READ bytes.
    let rc = unsafe {
        generated::bpf_probe_read_user(buf.as_mut_ptr().cast(), want, a as *const core::ffi::c_void)
    };
    if let Some(at) = buf.get_mut(ADDR_LEN_AT..ADDR_LEN_AT + 4) {
        at.copy_from_slice(&(claimed as u32).to_ne_bytes());
    }
    r.buf_len[0] = if rc == 0 { want as i32 } else { rc as i32 };
    r.kinds[0] = Buf::Addr as u8;
    r.nbufs = 1;
}

/// A call returns with `ret`: sent if it passes the filters (the errno filters first:
/// they need no helper). `stats_idx` says which syscall it was (see
/// `ThreadState::stats_idx`), `timed_ns` when the aggregate timed its start (0: not
/// timed), `noted` whether [`on_enter`] took it (else it is tested for selection here,
/// with the aggregate's start). A path that could not be read at entry (its page not yet
/// faulted in: a program's helper cannot fault) is read again now that the kernel has
/// read it, unless an exec replaced the memory. `ctx` is the program's (sys_exit's
/// registers and result are read from it; `--stack` takes the user stack through it).
#[inline(never)]
pub fn on_exit(ctx: *mut core::ffi::c_void, stats_idx: u32, timed_ns: u64, noted: bool) {
    // TP_PROTO(struct pt_regs *regs, long ret): read here, not passed (BPF calls take five
    // arguments).
    let tp = RawTracePointContext::new(ctx);
    let (regs, ret): (u64, i64) = (tp.arg(0), tp.arg(1));
    let c = config();
    let failed = ret < 0 && ret >= -MAX_ERRNO;
    if c.failed_only != 0 && !failed {
        return;
    }
    if c.errno_filter != 0 {
        let e = if failed { (-ret) as usize } else { 0 };
        // The word's index is masked after a barrier (see `events::opaque`): folded
        // into the shift, the mask was lost to Linux 6.12's and 6.16's verifiers
        // ("unbounded memory access").
        let w = opaque((e / 64) as u64) as usize;
        let hit = failed
            && c.errnos
                .get(w & (ERRNO_BITS / 64 - 1))
                .is_some_and(|w| w & (1 << (e % 64)) != 0);
        if !hit {
            return;
        }
    }
    let compat = stats_idx & COMPAT_IDX != 0;
    let nr = (stats_idx & !COMPAT_IDX) % SYSCALL_SLOTS;
    let bit = StreamConfig::bit(nr as u64, compat);
    let (first, second) = c.path_args(bit);
    if !noted && (first != 0 || !selected(c, bit)) {
        // Not selected, or a call with paths on_enter could not keep (counted there).
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    let exec = crate::memory::is_exec(stats_idx);
    let r = if first == 0 {
        let start_ns = if noted {
            let Some(start) = STREAM_START.get_ptr(noted_entry(regs)) else {
                count_lost(Lost::PendingFull);
                return;
            };
            // SAFETY: a map value, valid while the program runs.
            let start = unsafe { *start };
            // The note was taken over by another thread (its registers' slot): the
            // call's start is not known.
            if start.tid != tid {
                count_lost(Lost::PendingFull);
                return;
            }
            start.start_ns
        } else {
            timed_ns
        };
        let Some(r) = STREAM_SCRATCH.get_ptr_mut(0) else {
            return;
        };
        // SAFETY: this CPU's scratch record.
        let r = unsafe { &mut *r };
        read_args(r, regs, compat);
        r.nr = nr | if compat { NR_COMPAT } else { 0 };
        r.tid = tid;
        r.tgid = (pid_tgid >> 32) as u32;
        r.nbufs = 0;
        r.start_ns = start_ns;
        let (addr, len) = c.addr_args(bit);
        if addr != 0 {
            read_addr(r, addr, len, ret);
        }
        r
    } else {
        let Some(r) = STREAM_PENDING.get_ptr_mut(&tid) else {
            count_lost(Lost::PendingFull);
            return;
        };
        // SAFETY: the running thread's own entry; only it writes it.
        let r = unsafe { &mut *r };
        if !(exec && ret == 0) {
            if r.buf_len[0] < 0 {
                r.buf_len[0] = read_path(r.args.get(first - 1).copied(), &mut r.bufs[0]);
            }
            if r.buf_len[1] < 0 && second != 0 && second & ARG_IS_ARGV as usize == 0 {
                r.buf_len[1] = read_path(r.args.get(second - 1).copied(), &mut r.bufs[1]);
            }
        }
        r
    };
    // SAFETY: reading the monotonic clock has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let dur = if r.start_ns == 0 {
        // Not timed at entry (`sampled_start`): the line takes the call's end.
        r.start_ns = now;
        DUR_UNKNOWN
    } else {
        now.wrapping_sub(r.start_ns)
    };
    if dur < c.min_ns {
        return;
    }
    r.ret = ret;
    r.dur_ns = dur;
    r.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    let unsaid = STREAM_LOST.get_ptr_mut(LOST_KINDS);
    // SAFETY: per-CPU value.
    r.lost_before = unsaid.map_or(0, |p| unsafe { *p });
    let len = match r.nbufs {
        0 => HEADER_BYTES,
        1 => HEADER_BYTES + PATH_BUF,
        _ => HEADER_BYTES + 2 * PATH_BUF,
    };
    // Removed by the verifier without --stack (in .rodata).
    let stacked = if crate::stack::enabled(c) {
        crate::stack::with_stack(ctx, r, len)
    } else {
        None
    };
    // SAFETY: `len` is at most the record's size.
    let bytes = stacked.unwrap_or_else(|| unsafe {
        core::slice::from_raw_parts((r as *const CallRecord).cast::<u8>(), len)
    });
    if STREAM_RING.output::<[u8]>(bytes, 0).is_ok() {
        if let Some(p) = unsaid {
            // SAFETY: per-CPU value.
            unsafe { *p = 0 };
        }
    } else {
        count_lost(Lost::RingFull);
        if let Some(p) = unsaid {
            // SAFETY: per-CPU value.
            unsafe { *p += 1 };
        }
    }
}
