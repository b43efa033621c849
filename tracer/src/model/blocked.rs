//! Off-CPU time by cause: what blocked threads waited in (the kernel side decides at each
//! blocking switch, see `tracer_common::block_cause`), split into waiting for work (event
//! waits, sleeps, condition waits: idle) and waiting on something (locks, uninterruptible
//! waits such as disk I/O, pipes and sockets, other calls, page faults). Pure.
use serde::Serialize;
use tracer_common::block_cause::{self, COUNT};

/// The cause a thread blocking inside the syscall `name` is given (before the kernel's
/// own overrides: uninterruptible sleep is [`block_cause::UNINTERRUPTIBLE`], and futex's operation
/// decides between a condition wait and a lock). For the `BLOCK_CAUSE` map.
pub fn cause_of(name: &str) -> u32 {
    use block_cause::*;
    match name {
        "epoll_wait"
        | "epoll_pwait"
        | "epoll_pwait2"
        | "poll"
        | "ppoll"
        | "ppoll_time64"
        | "select"
        | "_newselect"
        | "pselect6"
        | "pselect6_time64"
        | "accept"
        | "accept4"
        | "io_getevents"
        | "io_pgetevents"
        | "io_pgetevents_time64"
        | "io_uring_enter" => EVENT_WAIT,
        "nanosleep"
        | "clock_nanosleep"
        | "clock_nanosleep_time64"
        | "pause"
        | "rt_sigsuspend"
        | "sigsuspend"
        | "rt_sigtimedwait"
        | "rt_sigtimedwait_time64"
        | "wait4"
        | "waitid"
        | "waitpid" => SLEEP,
        "futex" | "futex_time64" => FUTEX,
        "futex_waitv" => CONDITION,
        "flock" => LOCK,
        "read" | "readv" | "pread64" | "preadv" | "preadv2" | "write" | "writev" | "pwrite64"
        | "pwritev" | "pwritev2" | "recv" | "recvfrom" | "recvmsg" | "recvmmsg"
        | "recvmmsg_time64" | "send" | "sendto" | "sendmsg" | "sendmmsg" | "connect" | "splice"
        | "tee" | "vmsplice" | "sendfile" | "sendfile64" | "copy_file_range" | "open"
        | "openat" | "openat2" | "ioctl" => DESCRIPTOR,
        _ => OTHER,
    }
}

/// Blocked time by cause, in ns: a process's or a thread's in a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlockedBy {
    /// Waiting for work: event_wait + sleep + condition.
    pub waiting_for_work_ns: u64,
    /// Waiting on something: lock + uninterruptible + descriptor + other_syscall + outside_syscalls.
    pub waiting_on_something_ns: u64,
    /// epoll, poll, select, accept, io_getevents, io_uring_enter.
    pub event_wait_ns: u64,
    /// nanosleep, pause, sigsuspend, sigtimedwait, wait4/waitid.
    pub sleep_ns: u64,
    /// futex waits with FUTEX_WAIT_BITSET (glibc's condition variables, semaphores,
    /// joins: an idle pool thread).
    pub condition_ns: u64,
    /// Other futex waits (glibc's mutexes), flock.
    pub lock_ns: u64,
    /// Uninterruptible sleep in a syscall (`D`): disk I/O (a read from disk, fsync), or a
    /// kernel wait (a vfork parent, a kernel lock).
    pub uninterruptible_ns: u64,
    /// Reads, writes, sends, receives, connects, opens waiting on a pipe, socket or tty.
    pub descriptor_ns: u64,
    pub other_syscall_ns: u64,
    /// Blocked outside any syscall: page faults waiting for a page, stops.
    pub outside_syscalls_ns: u64,
    /// Blocked since before tracing started (or the cause was not recorded).
    pub unknown_ns: u64,
}

impl BlockedBy {
    /// From counters indexed by `block_cause`.
    pub fn of(by: &[u64; COUNT]) -> Self {
        use block_cause::*;
        let at = |c: u32| by[c as usize];
        Self {
            waiting_for_work_ns: at(EVENT_WAIT) + at(SLEEP) + at(CONDITION),
            waiting_on_something_ns: at(LOCK)
                + at(UNINTERRUPTIBLE)
                + at(DESCRIPTOR)
                + at(OTHER)
                + at(NO_SYSCALL),
            event_wait_ns: at(EVENT_WAIT),
            sleep_ns: at(SLEEP),
            condition_ns: at(CONDITION),
            lock_ns: at(LOCK),
            uninterruptible_ns: at(UNINTERRUPTIBLE),
            descriptor_ns: at(DESCRIPTOR),
            other_syscall_ns: at(OTHER),
            outside_syscalls_ns: at(NO_SYSCALL),
            unknown_ns: at(UNKNOWN),
        }
    }

    /// The causes with their names as reports show them, idle ones first.
    pub fn parts(&self) -> [(&'static str, u64, bool); 9] {
        [
            ("event waits", self.event_wait_ns, true),
            ("sleeps", self.sleep_ns, true),
            ("condition waits", self.condition_ns, true),
            ("locks", self.lock_ns, false),
            (
                "uninterruptible (disk I/O, kernel waits)",
                self.uninterruptible_ns,
                false,
            ),
            ("pipes and sockets", self.descriptor_ns, false),
            ("other syscalls", self.other_syscall_ns, false),
            ("outside syscalls", self.outside_syscalls_ns, false),
            ("since before tracing", self.unknown_ns, false),
        ]
    }

    /// The `cause` label values of metrics, in [`Self::labelled`] order.
    pub const LABELS: [&'static str; 9] = [
        "event_wait",
        "sleep",
        "condition",
        "lock",
        "uninterruptible",
        "descriptor",
        "other_syscall",
        "outside_syscalls",
        "unknown",
    ];

    /// Each cause with its metrics label.
    pub fn labelled(&self) -> [(&'static str, u64); 9] {
        let parts = self.parts();
        std::array::from_fn(|i| (Self::LABELS[i], parts[i].1))
    }

    pub fn total_ns(&self) -> u64 {
        self.waiting_for_work_ns + self.waiting_on_something_ns + self.unknown_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_by_name() {
        use block_cause::*;
        assert_eq!(cause_of("epoll_pwait"), EVENT_WAIT);
        assert_eq!(cause_of("clock_nanosleep"), SLEEP);
        assert_eq!(cause_of("futex"), FUTEX);
        assert_eq!(cause_of("read"), DESCRIPTOR);
        assert_eq!(cause_of("fsync"), OTHER);
        assert_eq!(cause_of("flock"), LOCK);
    }

    #[test]
    fn groups_add_up() {
        let mut by = [0u64; COUNT];
        for (i, v) in by.iter_mut().enumerate() {
            *v = 1 << i;
        }
        let b = BlockedBy::of(&by);
        assert_eq!(b.waiting_for_work_ns, 1 + 2 + 4);
        assert_eq!(b.waiting_on_something_ns, 8 + 16 + 32 + 64 + 128);
        assert_eq!(b.unknown_ns, 256);
        assert_eq!(b.total_ns(), 511);
        let parts: u64 = b.parts().iter().map(|p| p.1).sum();
        assert_eq!(parts, 511);
        assert_eq!(b.parts().iter().filter(|p| p.2).count(), 3);
    }
}
