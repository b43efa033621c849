//! `int80 GETPPID`: 32-bit syscalls from 64-bit code, through `int 0x80` (the compat entry a
//! 32-bit program uses), with exactly known effects on the syscall table, the mappings and
//! the descriptors (see `usage` in workload.rs).
use std::arch::asm;

use crate::memory::{free_run, open_fds, wait_for_go};

/// i386 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl).
const OPEN: u32 = 5;
const CLOSE: u32 = 6;
const PIPE: u32 = 42;
const DUP2: u32 = 63;
const GETPPID: u32 = 64;
const MMAP_OLD: u32 = 90;
const MUNMAP: u32 = 91;
const SOCKETCALL: u32 = 102;
const MMAP2: u32 = 192;
const FCNTL64: u32 = 221;
/// `socketcall`'s `SYS_SOCKET`.
const SYS_SOCKET: u32 = 1;
const MIB: u32 = 1 << 20;

/// A syscall through `int 0x80`: i386 number `nr`, arguments in ebx, ecx, edx, esi, edi
/// (ebp, the sixth, is 0); returns eax: -errno, or a value (an address up to 4 GiB).
fn syscall32(nr: u32, a: [u32; 5]) -> i64 {
    let ret: u32;
    // SAFETY: the callers pass arguments valid for the call: pointers below 4 GiB into
    // memory this process owns. rbx (reserved by LLVM) is swapped in and out around the
    // call, rbp saved on the stack; the compat entry clobbers r8-r11.
    unsafe {
        asm!(
            "xchg rbx, {b}",
            "push rbp",
            "xor ebp, ebp",
            "int 0x80",
            "pop rbp",
            "xchg rbx, {b}",
            b = inout(reg) u64::from(a[0]) => _,
            inout("eax") nr => ret,
            in("ecx") a[1],
            in("edx") a[2],
            in("esi") a[3],
            in("edi") a[4],
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    match ret as i32 {
        e @ -4095..0 => i64::from(e),
        _ => i64::from(ret),
    }
}

/// GETPPID `getppid`s; `open` of /dev/null 3 times and `close` of one; `pipe`; `socket`
/// through `socketcall`; `dup2` onto a free number; `fcntl64(F_DUPFD)`; `mmap2` of 2 MiB
/// anonymous and `munmap` of 1 MiB of it; the old `mmap` of 1 MiB anonymous. All 32-bit.
/// Net effect on descriptors: +7; prints `delta D` (the /proc count after - before).
pub fn int80(getppid: u64, wait: bool) {
    let before = open_fds();
    let free = free_run(300, 1) as u32;
    // Arguments in memory must lie below 4 GiB: one page mapped with MAP_32BIT.
    // SAFETY: a fresh anonymous mapping.
    let low = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    assert_ne!(low, libc::MAP_FAILED);
    let low = low.cast::<u8>();
    let at = |off: usize| low as u32 + off as u32;
    // SAFETY: writes within the page just mapped.
    unsafe {
        std::ptr::copy_nonoverlapping(c"/dev/null".as_ptr().cast(), low, 10);
        let socket_args = low.add(64).cast::<u32>();
        *socket_args = libc::AF_UNIX as u32;
        *socket_args.add(1) = libc::SOCK_STREAM as u32;
        *socket_args.add(2) = 0;
        // struct mmap_arg_struct32 { addr, len, prot, flags, fd, offset }
        let old = low.add(128).cast::<u32>();
        let fields = [
            0,
            MIB,
            (libc::PROT_READ | libc::PROT_WRITE) as u32,
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u32,
            u32::MAX,
            0,
        ];
        for (i, v) in fields.into_iter().enumerate() {
            *old.add(i) = v;
        }
    }
    wait_for_go(wait);
    for _ in 0..getppid {
        assert!(syscall32(GETPPID, [0; 5]) > 0);
    }
    let fds: Vec<i64> = (0..3)
        .map(|_| syscall32(OPEN, [at(0), libc::O_RDONLY as u32, 0, 0, 0]))
        .collect();
    assert!(fds.iter().all(|&fd| fd >= 0), "open: {fds:?}");
    assert_eq!(syscall32(CLOSE, [fds[0] as u32, 0, 0, 0, 0]), 0);
    assert_eq!(syscall32(PIPE, [at(32), 0, 0, 0, 0]), 0);
    assert!(syscall32(SOCKETCALL, [SYS_SOCKET, at(64), 0, 0, 0]) >= 0);
    assert_eq!(
        syscall32(DUP2, [fds[1] as u32, free, 0, 0, 0]),
        i64::from(free)
    );
    assert!(syscall32(FCNTL64, [fds[1] as u32, libc::F_DUPFD as u32, 400, 0, 0]) >= 400);
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u32;
    let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u32;
    let map = syscall32(MMAP2, [0, 2 * MIB, rw, anon, u32::MAX]);
    assert!(map > 0 && map < 1 << 32, "mmap2: {map}");
    assert_eq!(syscall32(MUNMAP, [map as u32, MIB, 0, 0, 0]), 0);
    let old = syscall32(MMAP_OLD, [at(128), 0, 0, 0, 0]);
    assert!(old > 0 && old < 1 << 32, "old mmap: {old}");
    println!("delta {}", open_fds() as i64 - before as i64);
}
