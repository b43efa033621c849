//! `--stack`: each call the stream sends carries the user stack of the thread that made
//! it, as return addresses (`bpf_get_stack` with `BPF_F_USER_STACK`: the kernel walks the
//! frame-pointer chain from the syscall's user registers). The frames go in the record
//! itself, after its paths, rather than in a stack-trace map by id: no id for userspace to
//! look up and delete, none shared by two calls and reused between them, no bucket
//! collisions. Only for the calls that passed the filters, just before the ring output;
//! with `StreamConfig::stack` 0 (in .rodata) the verifier removes all of it.
use core::ffi::c_void;

use aya_ebpf::{helpers::generated, macros::map, maps::PerCpuArray};
use tracer_common::stream::{
    CallRecord, HEADER_BYTES, MAX_PATHS, PATH_BUF, STACK_FRAMES, STACKED_BYTES, StreamConfig,
};

use crate::events::opaque;

/// A record with its stack, built here before it is sent (larger than the stack allows).
#[map(name = "STREAM_STACKED")]
static STREAM_STACKED: PerCpuArray<[u64; STACKED_BYTES / 8]> = PerCpuArray::with_max_entries(1, 0);

/// The kernel's `BPF_F_USER_STACK`.
const USER_STACK: u64 = 1 << 8;
const MOST: usize = HEADER_BYTES + MAX_PATHS * PATH_BUF;
const STACK_BYTES: usize = STACK_FRAMES * 8;

#[inline(always)]
pub fn enabled(c: &StreamConfig) -> bool {
    c.stack != 0
}

/// The first `len` bytes of `r` with the user stack appended and its length (or the
/// helper's errno) in the copy's `stack_len`: what to send instead of `r`. None when the
/// copy could not be made (then `r` goes without, its `stack_len` saying so).
#[inline(always)]
pub fn with_stack(ctx: *mut c_void, r: &mut CallRecord, len: usize) -> Option<&'static [u8]> {
    r.stack_len = -14;
    let buf = STREAM_STACKED.get_ptr_mut(0)?;
    let base = buf.cast::<u8>();
    // Bounded after a barrier (see `events::opaque`): the copy and the stack's place
    // must stay within the scratch for the verifier.
    let len = opaque(len as u64) as usize;
    if len > MOST {
        return None;
    }
    // SAFETY: both are map values; `len` is within each (checked above).
    let copied = unsafe {
        generated::bpf_probe_read_kernel(base.cast(), len as u32, (r as *const CallRecord).cast())
    };
    if copied != 0 {
        return None;
    }
    // SAFETY: `base + len` has STACK_BYTES within the scratch (its size is MOST +
    // STACK_BYTES); the helper checks the rest.
    let got = unsafe {
        generated::bpf_get_stack(ctx, base.add(len).cast(), STACK_BYTES as u32, USER_STACK)
    };
    let n = if got < 0 {
        0
    } else {
        (opaque(got as u64) as usize).min(STACK_BYTES)
    };
    let said = if got < 0 { got as i32 } else { n as i32 };
    // SAFETY: the copy's header is in the scratch (`len` is at least HEADER_BYTES: the
    // caller sends no less); `stack_len` is 4-aligned there.
    unsafe {
        base.add(core::mem::offset_of!(CallRecord, stack_len))
            .cast::<i32>()
            .write(said)
    };
    // SAFETY: `len + n` bytes of the scratch were written above.
    Some(unsafe { core::slice::from_raw_parts(base, len + n) })
}
