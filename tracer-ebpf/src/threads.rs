//! Per-thread syscall tables (`--threads`; see `tracer_common::threads`): sys_exit adds
//! each call of a traced thread to its row. With `THREAD_CALLS_ON == 0` (in .rodata) the
//! verifier removes the call.
use aya_ebpf::{bindings::BPF_ANY, macros::map, maps::HashMap};
use tracer_common::{
    Drop,
    threads::{MAX_THREAD_CALLS, ThreadCallKey, ThreadCalls},
};

use crate::filter::count_drop;

#[unsafe(no_mangle)]
static THREAD_CALLS_ON: u32 = 0;

/// The rows. Not an LRU: a full map refuses a new row, which is counted, where an LRU would
/// drop another thread's counts unsaid; userspace takes out the rows of threads that ended.
/// Preallocated here; from Linux 6.1 userspace loads it allocated by use (as
/// `sched::THREAD_STATS`).
#[map(name = "THREAD_CALLS")]
static THREAD_CALLS: HashMap<ThreadCallKey, ThreadCalls> =
    HashMap::with_max_entries(MAX_THREAD_CALLS, 0);

#[inline(always)]
pub fn enabled() -> bool {
    // SAFETY: a global in .rodata.
    unsafe { core::ptr::read_volatile(&THREAD_CALLS_ON) != 0 }
}

/// A call of thread `tid` (of process `tgid`) to syscall `nr` returned: `failed`, and its
/// weighted time `ns` (0 if untimed). Out of line: with `--threads` only.
#[inline(never)]
pub fn count(tid: u32, tgid: u32, nr: u32, failed: bool, ns: u64) {
    let key = ThreadCallKey { tid, nr };
    if let Some(p) = THREAD_CALLS.get_ptr_mut(&key) {
        // SAFETY: a map value; only this thread writes its rows, and it runs here.
        let c = unsafe { &mut *p };
        if c.tgid == tgid {
            c.calls += 1;
            c.errors += u64::from(failed);
            c.total_ns += ns;
            return;
        }
    }
    let row = ThreadCalls {
        tgid,
        _pad: 0,
        calls: 1,
        errors: u64::from(failed),
        total_ns: ns,
    };
    if THREAD_CALLS.insert(&key, &row, BPF_ANY as u64).is_err() {
        count_drop(Drop::ThreadCallsFull);
    }
}
