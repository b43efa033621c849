//! `tracer-workload blocking FSYNC_PATH`: a process whose blocked time is known by cause,
//! one phase after another, each timed by the workload itself:
//! 1. the main thread sleeps 4 x 100 ms (`clock_nanosleep`): 400 ms of sleeps;
//! 2. it reads from a pipe that a second thread writes to after sleeping 300 ms: about
//!    300 ms blocked in `read` on a pipe (and the writer's 300 ms of sleep);
//! 3. a third thread locks a glibc mutex, says so through a pipe, sleeps 300 ms and
//!    unlocks; the main thread, told, waits for the mutex: about 300 ms of lock (and
//!    300 ms of sleep);
//! 4. it `vfork`s a child that sleeps 400 ms and exits: the parent waits uninterruptibly
//!    (`D`) in `vfork` meanwhile (no disk needed: the kernel matrix's guests have none);
//! 5. it writes 8 MiB to FSYNC_PATH and `fsync`s it (disk I/O), then removes it.
//!
//! Prints `pipe_ms A lock_ms B vfork_ms C fsync_ms D` (each phase's wait as the main
//! thread timed it; `pipe_ms` with the short read of phase 3's handshake), then `done`.
use std::{
    io::Write,
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as i64,
        tv_nsec: ((ms % 1000) * 1_000_000) as i64,
    };
    // SAFETY: a valid timespec; no remainder wanted.
    unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &ts, std::ptr::null_mut()) };
}

fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: a valid out-array of two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

fn read_byte(fd: i32) {
    let mut b = 0u8;
    // SAFETY: a one-byte buffer.
    assert_eq!(unsafe { libc::read(fd, (&raw mut b).cast(), 1) }, 1);
}

fn write_byte(fd: i32) {
    // SAFETY: a one-byte buffer.
    assert_eq!(unsafe { libc::write(fd, c"x".as_ptr().cast(), 1) }, 1);
}

/// A glibc mutex shared with a thread (`FUTEX_WAIT` when contended, unlike Rust's own).
struct Mutex(std::cell::UnsafeCell<libc::pthread_mutex_t>);
// SAFETY: a pthread mutex is made to be shared between threads.
unsafe impl Sync for Mutex {}

static MUTEX: Mutex = Mutex(std::cell::UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));

pub fn run(path: &str) {
    for _ in 0..4 {
        sleep_ms(100);
    }
    // 2. A pipe read.
    let (r, w) = pipe();
    let writer = std::thread::spawn(move || {
        sleep_ms(300);
        write_byte(w);
    });
    let t = Instant::now();
    read_byte(r);
    let mut pipe_ms = t.elapsed();
    writer.join().unwrap();
    // 3. A contended mutex.
    let (r2, w2) = pipe();
    let holder = std::thread::spawn(move || {
        // SAFETY: a static, initialized mutex.
        unsafe { libc::pthread_mutex_lock(MUTEX.0.get()) };
        write_byte(w2);
        sleep_ms(300);
        // SAFETY: locked by this thread above.
        unsafe { libc::pthread_mutex_unlock(MUTEX.0.get()) };
    });
    let t = Instant::now();
    read_byte(r2);
    pipe_ms += t.elapsed();
    let t = Instant::now();
    // SAFETY: as above.
    unsafe {
        libc::pthread_mutex_lock(MUTEX.0.get());
        libc::pthread_mutex_unlock(MUTEX.0.get());
    }
    let lock_ms = t.elapsed();
    holder.join().unwrap();
    // 4. vfork.
    let t = Instant::now();
    // SAFETY: the child only makes two raw syscalls (a sleep, and _exit), touching no
    // memory it shares with the suspended parent beyond its own stack frame.
    #[allow(deprecated)] // libc warns of vfork misused; the child here only sleeps and exits
    match unsafe { libc::vfork() } {
        0 => unsafe {
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 400_000_000,
            };
            libc::syscall(libc::SYS_nanosleep, &ts as *const libc::timespec, 0usize);
            libc::_exit(0);
        },
        -1 => panic!("vfork failed"),
        child => {
            let mut status = 0;
            // SAFETY: a valid out-pointer; the child is ours.
            unsafe { libc::waitpid(child, &mut status, 0) };
        }
    }
    let vfork_ms = t.elapsed();
    // 5. fsync.
    let mut f = std::fs::File::create(path).expect("cannot create the fsync file");
    let block = vec![0x5au8; 1 << 20];
    for _ in 0..8 {
        f.write_all(&block).unwrap();
    }
    let t = Instant::now();
    // SAFETY: an open descriptor.
    assert_eq!(unsafe { libc::fsync(f.as_raw_fd()) }, 0);
    let fsync_ms = t.elapsed();
    drop(f);
    let _ = std::fs::remove_file(path);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "pipe_ms {:.3} lock_ms {:.3} vfork_ms {:.3} fsync_ms {:.3}",
        ms(pipe_ms),
        ms(lock_ms),
        ms(vfork_ms),
        ms(fsync_ms)
    );
    println!("done");
}
