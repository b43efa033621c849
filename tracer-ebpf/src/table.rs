//! Lookups in the per-id tables (TARGETS, THREADS, THREAD_SCHED): arrays of
//! `table::entries(pid_max)` entries, each id's in a set of `WAYS` (see
//! [`tracer_common::table`]). Every lookup is at most `WAYS` inlined array loads and tag
//! compares: no helper call, no hash.
use aya_ebpf::maps::Array;
use tracer_common::table::{Tagged, WAYS, set_base};

use crate::events::rodata;

/// Entries per table; set by userspace at load time (a power of two, at least `WAYS`). In
/// .rodata: the verifier sees it as a constant.
#[unsafe(no_mangle)]
static TABLE_ENTRIES: u32 = WAYS;

/// `id`'s entry, if it has one.
#[inline(always)]
pub fn find<T: Tagged>(map: &Array<T>, id: u32) -> Option<*mut T> {
    let base = set_base(id, *rodata(&TABLE_ENTRIES));
    for w in 0..WAYS {
        if let Some(p) = map.get_ptr_mut(base + w)
            // SAFETY: a map value, valid while the program runs.
            && unsafe { (*p).tag() } == id
        {
            return Some(p);
        }
    }
    None
}

/// `id`'s entry, else the first of its set that `free` accepts (the caller then takes it
/// over and writes `id` in it), else None.
#[inline(always)]
pub fn find_or_free<T: Tagged>(
    map: &Array<T>,
    id: u32,
    free: impl Fn(&T) -> bool,
) -> Option<*mut T> {
    let base = set_base(id, *rodata(&TABLE_ENTRIES));
    let mut spare = None;
    for w in 0..WAYS {
        if let Some(p) = map.get_ptr_mut(base + w) {
            // SAFETY: a map value, valid while the program runs.
            let e = unsafe { &*p };
            if e.tag() == id {
                return Some(p);
            }
            if spare.is_none() && free(e) {
                spare = Some(p);
            }
        }
    }
    spare
}

/// The index of what [`find_or_free`] finds, [`NONE`] if nothing. A plain integer: the
/// verifiers of Linux 5.10 and 6.1 refuse code that reads an `Option` of an index and a
/// pointer back from the stack where only its tag was written.
#[inline(always)]
pub fn find_or_free_index<T: Tagged>(map: &Array<T>, id: u32, free: impl Fn(&T) -> bool) -> u32 {
    let base = set_base(id, *rodata(&TABLE_ENTRIES));
    let mut spare = NONE;
    for w in 0..WAYS {
        if let Some(p) = map.get_ptr_mut(base + w) {
            // SAFETY: a map value, valid while the program runs.
            let e = unsafe { &*p };
            if e.tag() == id {
                return base + w;
            }
            if spare == NONE && free(e) {
                spare = base + w;
            }
        }
    }
    spare
}

/// No entry (see [`find_or_free_index`]).
pub const NONE: u32 = u32::MAX;
