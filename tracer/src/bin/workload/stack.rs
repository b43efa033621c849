//! `stack COUNT`: calls made from functions of known names with known frames, for
//! `--stack`: COUNT `getuid`s by the `syscall` instruction in `tracer_stack_leaf`, called
//! from `tracer_stack_caller`, both with a frame pointer (this binary is built without
//! them, so these two are written out); then COUNT `getppid`s through libc's wrapper
//! (built without a frame pointer), called from `tracer_stack_via_libc` (which keeps one),
//! itself called from `tracer_stack_libc_user`. The kernel's frame-pointer walk gives, for
//! `getuid`: the leaf, the caller, the caller's caller; for `getppid`: libc's `getppid`, then
//! `tracer_stack_libc_user` (the wrapper kept no frame, so the walk skips the function that
//! called it). Then sleeps a moment, so that the process is still there when its stacks are
//! read.
use std::arch::naked_asm;

/// `getuid()` by the `syscall` instruction (x86_64 number 102), in a frame of its own.
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn tracer_stack_leaf() -> i64 {
    naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "mov eax, 102",
        "syscall",
        "pop rbp",
        "ret"
    )
}

#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn tracer_stack_caller() -> i64 {
    naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "call {leaf}",
        "pop rbp",
        "ret",
        leaf = sym tracer_stack_leaf,
    )
}

/// libc's `getppid`, called from a frame.
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn tracer_stack_via_libc() -> i64 {
    naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "call {getppid}",
        "pop rbp",
        "ret",
        getppid = sym libc::getppid,
    )
}

#[inline(never)]
#[unsafe(no_mangle)]
extern "C" fn tracer_stack_libc_user() -> i64 {
    // The result is used after the call, so that it is not a tail jump.
    std::hint::black_box(tracer_stack_via_libc()) + 1
}

pub fn run(count: u64) {
    for _ in 0..count {
        std::hint::black_box(tracer_stack_caller());
    }
    for _ in 0..count {
        std::hint::black_box(tracer_stack_libc_user());
    }
    // Long enough for a slow (emulated) guest's reader to decode the calls while the
    // process lives.
    std::thread::sleep(std::time::Duration::from_millis(1500));
}
