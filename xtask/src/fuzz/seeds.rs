//! The seeds of the fuzz targets' corpora: valid inputs, made by the same encoders and
//! layouts as the kernel's records (no binary is committed).
use syscalls::Sysno;
use tracer_common::{
    event::{
        Crash, EventData, Exec, Exit, Fork, Header, Kind, OomKill, RawEvent, Signal, Stall, Taken,
    },
    stream::{
        ADDR_LEN_AT, ARG_BUF, ARGV_LENS, ARGV_MORE, Buf, CallRecord, DUR_UNKNOWN, HEADER_BYTES,
        NR_COMPAT, PATH_BUF, PATH_READ,
    },
};

/// One valid record of each kind, for `decode`.
pub fn decode() -> Vec<(&'static str, Vec<u8>)> {
    let record = |kind: Kind, data| RawEvent {
        header: Header {
            kind: kind as u32,
            slot: 0,
            ts_ns: 1_500_000_000,
            tid: 1001,
            tgid: 1000,
        },
        data,
    };
    let seeds = [
        (
            "fork",
            record(
                Kind::Fork,
                EventData::Fork(Fork {
                    child_tid: 1002,
                    child_tgid: 1002,
                    followed: 1,
                    _pad: 0,
                    child_start_ns: 5_000_000_000,
                }),
            ),
        ),
        (
            "exec",
            record(
                Kind::Exec,
                EventData::Exec(Exec {
                    old_tid: 1001,
                    _pad: 0,
                    comm: *b"tracer-workload\0",
                }),
            ),
        ),
        (
            "exit",
            record(
                Kind::Exit,
                EventData::Exit(Exit {
                    exit_code: 3 << 8,
                    group_dead: 1,
                    calls: 100,
                    errors: 1,
                    start_ns: 123_000_000,
                }),
            ),
        ),
        (
            "signal",
            record(
                Kind::Signal,
                EventData::Signal(Signal {
                    sig: 15,
                    sender_tgid: 1,
                    result: 0,
                    from_kernel: 0,
                }),
            ),
        ),
        (
            "oom-kill",
            record(Kind::OomKill, EventData::OomKill(OomKill::example(b"app"))),
        ),
        (
            "taken",
            record(
                Kind::Taken,
                EventData::Taken(Taken {
                    how: tracer_common::target_flags::BY_COMM,
                    cause: tracer_common::event::taken_cause::NAME,
                    start_ns: 7_000_000_000,
                }),
            ),
        ),
        (
            "stall",
            record(
                Kind::Stall,
                EventData::Stall(Stall {
                    busy_ns: 2_000_000_000,
                    on_cpu_ns: 1_990_000_000,
                    runq_ns: 4_000_000,
                    calls: 3,
                    slow_nr: 0,
                    slow_ns: 20_000,
                    comm: *b"node\0\0\0\0\0\0\0\0\0\0\0\0",
                }),
            ),
        ),
        (
            "crash",
            record(
                Kind::Crash,
                EventData::Crash(Crash {
                    sig: 11,
                    code: 2,
                    addr: 0x7f00_0000_1000,
                    ip: 0x5555_0000_1234,
                    sender_tgid: 1000,
                    from_kernel: 1,
                    comm: *b"tracer-workload\0",
                }),
            ),
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, ev)| {
            let (bytes, len) = ev.encode();
            (name, bytes[..len].to_vec())
        })
        .collect()
}

/// For `stream`: records of calls strace mode decodes in different ways (paths, a cut one,
/// one that could not be read, descriptors, flags, a failure, an i386 call, an unknown
/// number, a name to escape), and the texts `-y` parses (`/proc/net` tables, a sock_diag
/// answer).
pub fn stream() -> Vec<(&'static str, Vec<u8>)> {
    const AT_FDCWD: u64 = -100i64 as u64;
    let long = [b'a'; PATH_READ as usize - 1];
    let mut seeds = vec![
        (
            "openat",
            call(
                Sysno::openat.id() as u32,
                [AT_FDCWD, 0x1000, 0o2000000, 0, 0, 0],
                &[b"/etc/app.json"],
                -2,
            ),
        ),
        (
            "rename-cut",
            call(
                Sysno::rename.id() as u32,
                [0x10, 0x20, 0, 0, 0, 0],
                &[b"/tmp/a", &long],
                0,
            ),
        ),
        (
            "read",
            call(Sysno::read.id() as u32, [3, 0x1000, 4096, 0, 0, 0], &[], 5),
        ),
        (
            "socket",
            call(Sysno::socket.id() as u32, [2, 1, 0, 0, 0, 0], &[], 4),
        ),
        (
            "connect",
            call(
                Sysno::connect.id() as u32,
                [4, 0x2000, 16, 0, 0, 0],
                &[],
                -111,
            ),
        ),
        (
            "close",
            call(Sysno::close.id() as u32, [3, 0, 0, 0, 0, 0], &[], 0),
        ),
        (
            "mmap",
            call(
                Sysno::mmap.id() as u32,
                [0, 8192, 3, 0x22, u64::MAX, 0],
                &[],
                0x7f00_0000_0000,
            ),
        ),
        (
            "i386-open",
            call(
                NR_COMPAT | 5,
                [0x8000, 0, 0, 0, 0, 0],
                &[b"/lib/libc.so.6"],
                3,
            ),
        ),
        ("unknown", call(1000, [1, 2, 3, 4, 5, 6], &[], -38)),
    ];
    // A path that could not be read (its pointer shown), a call not timed, a name with
    // control characters.
    let mut r = record(
        Sysno::execve.id() as u32,
        [0xdead, 0, 0, 0, 0, 0],
        &[b""],
        -14,
    );
    r.buf_len[0] = -14;
    r.dur_ns = DUR_UNKNOWN;
    r.comm = *b"\x1b[2J\n<evil>\0\0\0\0\0";
    seeds.push(("execve-efault", bytes(&r, 1)));
    // execve with its argv (two entries, more after), and a connect with its address.
    let mut r = record(
        Sysno::execve.id() as u32,
        [0x1000, 0x2000, 0x3000, 0, 0, 0],
        &[b"/bin/ls", b""],
        0,
    );
    r.kinds[1] = Buf::Argv as u8;
    r.buf_len[1] = 2 | ARGV_MORE;
    r.bufs[1] = [0; PATH_BUF];
    r.bufs[1][..3].copy_from_slice(b"ls\0");
    r.bufs[1][ARG_BUF..ARG_BUF + 3].copy_from_slice(b"-l\0");
    r.bufs[1][ARGV_LENS] = 3;
    r.bufs[1][ARGV_LENS + 1] = 3;
    seeds.push(("execve-argv", bytes(&r, 2)));
    let mut r = record(
        Sysno::connect.id() as u32,
        [4, 0x2000, 16, 0, 0, 0],
        &[b""],
        -111,
    );
    r.kinds[0] = Buf::Addr as u8;
    r.buf_len[0] = 16;
    r.bufs[0] = [0; PATH_BUF];
    r.bufs[0][..8].copy_from_slice(&[2, 0, 0x1f, 0x90, 127, 0, 0, 1]);
    r.bufs[0][ADDR_LEN_AT..ADDR_LEN_AT + 4].copy_from_slice(&16u32.to_ne_bytes());
    seeds.push(("connect-addr", bytes(&r, 1)));
    seeds.extend([
        (
            "proc-net-tcp",
            b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:AEBB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 219775 1 0000000000000000 100 0 0 10 0
   1: 0100007F:BF32 0100007F:AEBB 01 00000000:00000000 00:00000000 00000000     0        0 219776 1 0000000000000000 20 4 30 10 -1
".to_vec(),
        ),
        (
            "proc-net-tcp6",
            b"   0: 00000000000000000000000001000000:A7CF 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 219783 1 0000000000000000 100 0 0 10 0
".to_vec(),
        ),
        (
            "proc-net-unix",
            b"Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 219779 /tmp/fd test.sock
0000000000000000: 00000003 00000000 00000000 0001 03 219777
0000000000000000: 00000002 00000000 00010000 0001 01 20001 @abstract
".to_vec(),
        ),
        ("sock-diag", unix_diag_answer(225547, b"\0xy", 225548)),
    ]);
    seeds
}

/// A record of a call that took 12,345 ns, with its paths filled in.
fn record(nr: u32, args: [u64; 6], paths: &[&[u8]], ret: i64) -> CallRecord {
    let mut r = CallRecord::decode(&[0; size_of::<CallRecord>()]).expect("a zeroed record");
    r.nr = nr;
    r.tid = 1001;
    r.tgid = 1000;
    r.start_ns = 5_000_000_000;
    r.dur_ns = 12_345;
    r.ret = ret;
    r.args = args;
    r.comm = *b"tracer-workload\0";
    for (i, p) in paths.iter().enumerate() {
        r.bufs[i][..p.len()].copy_from_slice(p);
        r.buf_len[i] = p.len() as i32 + 1;
    }
    r.nbufs = paths.len() as _;
    r
}

fn call(nr: u32, args: [u64; 6], paths: &[&[u8]], ret: i64) -> Vec<u8> {
    bytes(&record(nr, args, paths, ret), paths.len())
}

/// The record as the kernel sends it: the header and `npaths` path buffers.
fn bytes(r: &CallRecord, npaths: usize) -> Vec<u8> {
    // SAFETY: a #[repr(C)] struct of integers and arrays of them, without padding.
    let all = unsafe {
        std::slice::from_raw_parts(
            (r as *const CallRecord).cast::<u8>(),
            size_of::<CallRecord>(),
        )
    };
    all[..HEADER_BYTES + npaths * PATH_BUF].to_vec()
}

/// sock_diag's answer about unix socket `inode`: `struct nlmsghdr`, `struct unix_diag_msg`,
/// then its name and its peer as attributes (linux/unix_diag.h).
fn unix_diag_answer(inode: u32, name: &[u8], peer: u32) -> Vec<u8> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const UNIX_DIAG_NAME: u16 = 0;
    const UNIX_DIAG_PEER: u16 = 2;
    let mut a = Vec::new();
    a.extend(0u32.to_ne_bytes()); // the length, below
    a.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    a.extend([0; 10]);
    a.extend([libc::AF_UNIX as u8, 1, 1, 0]);
    a.extend(inode.to_ne_bytes());
    a.extend([0; 8]);
    for (kind, data) in [
        (UNIX_DIAG_NAME, name),
        (UNIX_DIAG_PEER, &peer.to_ne_bytes()[..]),
    ] {
        a.extend((4 + data.len() as u16).to_ne_bytes());
        a.extend(kind.to_ne_bytes());
        a.extend(data);
        a.resize(a.len().next_multiple_of(4), 0);
    }
    let len = a.len() as u32;
    a[..4].copy_from_slice(&len.to_ne_bytes());
    a
}
