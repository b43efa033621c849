//! `tracer-workload loop ITERATIONS BUSY_MS STALL_AT STALL_MS`: an event loop on `poll`
//! (of a pipe nothing writes to, with a 5 ms timeout): ITERATIONS iterations, each busy
//! BUSY_MS ms on the CPU after its wait returns, except iteration STALL_AT (counted from
//! 1; 0 for none), busy STALL_MS ms, a stall. Prints `stall_start_ns T` (CLOCK_MONOTONIC,
//! when the stalled iteration began) and `done`.
fn now_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Spins on the CPU for `ms` ms, making no syscall (the clock is read through the vDSO).
fn spin_ms(ms: u64) {
    let end = now_ns() + ms * 1_000_000;
    while now_ns() < end {
        std::hint::spin_loop();
    }
}

pub fn run(iterations: u64, busy_ms: u64, stall_at: u64, stall_ms: u64) {
    let mut fds = [0i32; 2];
    // SAFETY: a valid out-array of two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let mut pfd = libc::pollfd {
        fd: fds[0],
        events: libc::POLLIN,
        revents: 0,
    };
    let mut stall_start = 0;
    for i in 1..=iterations {
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 5) };
        if i == stall_at {
            stall_start = now_ns();
            spin_ms(stall_ms);
        } else {
            spin_ms(busy_ms);
        }
    }
    // The last iteration ends at this wait.
    // SAFETY: as above.
    unsafe { libc::poll(&mut pfd, 1, 5) };
    println!("stall_start_ns {stall_start}");
    println!("done");
}

/// `tracer-workload compute ROUNDS`: a thread computes ROUNDS x 10 million steps of a
/// linear congruence, making no syscall and reading no clock (about 20 ms a round here),
/// then ends; the main thread joins it. Prints nothing (its tracer's JSON may share its
/// standard output).
pub fn compute(rounds: u64) {
    let worker = std::thread::spawn(move || {
        let mut x = 0u64;
        for _ in 0..rounds {
            for i in 0..10_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
        }
        x
    });
    std::hint::black_box(worker.join().unwrap());
}
