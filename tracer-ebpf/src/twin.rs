//! Rare events are hooked twice. On Linux 7.3 (not 6.18) programs on tracepoints run
//! preemptibly, and while one run of a program is preempted on a CPU the kernel skips every
//! other run of that program on that CPU (its `recursion_misses`). Threads ending together
//! on a busy CPU lost 5 of their 7 exits that way in one run of the kernel matrix. A second
//! program on the same tracepoint has its own guard, so it runs when the first is skipped:
//! it handles what the first could not.
//!
//! For events that must be reported once (fork, exec, exit, signal), the first program
//! marks each event it handles, by thread; the second runs right after it in the same
//! thread, and takes the mark away, or handles the event if there is none. Hooks whose work
//! is the same done twice (clearing a new task's state, a selector's take-in) just run
//! their body in both programs.
//!
//! Left over: a mark can outlive its event when the second program is skipped in turn; the
//! map is least-recently-used, so such marks make room, and one is read only if the same
//! thread's next event of that kind is skipped by the first program.
use aya_ebpf::{macros::map, maps::LruHashMap};
use tracer_common::event::Kind;

/// An event in flight between the two programs: its thread, kind, and what tells apart
/// events of one thread that could nest (a signal sent from an interrupt).
#[repr(C)]
pub struct Key {
    tid: u32,
    kind: u32,
    a: u32,
    b: u32,
}

impl Key {
    #[inline(always)]
    pub fn new(tid: u32, kind: Kind, a: u32, b: u32) -> Self {
        Self {
            tid,
            kind: kind as u32,
            a,
            b,
        }
    }
}

/// Events the first program has handled and the second has not yet seen.
#[map(name = "HANDLED")]
static HANDLED: LruHashMap<Key, u8> = LruHashMap::with_max_entries(4096, 0);

/// Which of the two programs of a hook is running.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Twin {
    First,
    Second,
}

impl Twin {
    /// Whether this program handles the event: the first always, marking it; the second
    /// when the first did not (it was skipped).
    #[inline(always)]
    pub fn handles(self, key: Key) -> bool {
        match self {
            Twin::First => {
                // Full: the least recently used mark makes room.
                let _ = HANDLED.insert(&key, &0, 0);
                true
            }
            Twin::Second => HANDLED.remove(&key).is_err(),
        }
    }
}
