//! tracer's kernel programs. Each hook family lives in its own module; this file only
//! declares them. Built for `bpfel-unknown-none` by `cargo xtask build-ebpf`; on the host it
//! compiles to an empty binary so that `cargo build --workspace` does not fail.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// Atomic add on map values: core's atomic types offer no read-modify-write for the BPF
// target, the intrinsic lowers to the BPF atomic add instruction.
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]
// An empty asm block as a compiler barrier (see `events::hist_slot`).
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

#[cfg(target_arch = "bpf")]
mod events;
#[cfg(target_arch = "bpf")]
mod filter;
#[cfg(target_arch = "bpf")]
mod floor;
#[cfg(target_arch = "bpf")]
mod life;
#[cfg(target_arch = "bpf")]
mod loops;
#[cfg(target_arch = "bpf")]
mod memory;
#[cfg(target_arch = "bpf")]
mod oom;
#[cfg(target_arch = "bpf")]
mod sched;
#[cfg(target_arch = "bpf")]
mod select;
#[cfg(target_arch = "bpf")]
mod stack;
#[cfg(target_arch = "bpf")]
mod stream;
#[cfg(target_arch = "bpf")]
mod syscalls;
#[cfg(target_arch = "bpf")]
mod table;
#[cfg(target_arch = "bpf")]
mod threads;
#[cfg(target_arch = "bpf")]
mod twin;

/// The programs are written so that no path can panic (no unchecked indexing, no unwrap).
/// Should one remain, it ends in this loop, which the verifier refuses (a program that can
/// loop for ever does not load): a logic error fails loudly at load time. Telling the
/// compiler the path is unreachable instead would let it drop the checks that lead there,
/// turning the error into silently wrong code.
#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    #[allow(clippy::empty_loop)]
    loop {}
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(not(target_arch = "bpf"))]
fn main() {}
