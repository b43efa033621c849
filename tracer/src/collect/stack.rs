//! `--stack`: the streamed calls' user stacks symbolized with blazesym, from the process
//! itself: its mappings (`/proc/PID/maps`), the ELF symbols of the files mapped, and its
//! perf map (`/tmp/perf-PID.map`, written by JIT runtimes such as `node --perf-basic-prof`)
//! for code that is in no file. The symbolizer (and the files it parsed) is kept across
//! calls; a process's mappings and perf map are read once and cached by blazesym, so that
//! the frames of a process that exited before its calls were decoded are still named, and
//! read again when an address falls outside them (a library loaded since, new JIT code).
use std::collections::HashMap;

use blazesym::symbolize::{
    Input, Reason, Symbolized, Symbolizer,
    cache::{self, Cache},
    source::{Process, Source},
};

use crate::model::strace::stack::{Frame, Symbolize};

pub struct Stacks {
    symbolizer: Symbolizer,
    /// Per process: when its mappings were cached (CLOCK_MONOTONIC ns), None when it was
    /// gone then.
    cached: HashMap<u32, Option<u64>>,
    /// The stacks named in full in this batch of calls, by process and addresses: a loop's
    /// calls share a few stacks, each symbolized once a batch.
    named: HashMap<(u32, Box<[u64]>), Vec<Frame>>,
}

/// Processes whose cached mappings are kept (a follow of many short-lived ones is
/// forgotten past this, and read again if they show up).
const PROCESSES_KEPT: usize = 4096;

impl Stacks {
    pub fn new() -> Self {
        Self {
            symbolizer: Symbolizer::new(),
            cached: HashMap::new(),
            named: HashMap::new(),
        }
    }

    /// A new batch: the stacks named in the last are named again (a process may have
    /// mapped other code at the same addresses since).
    pub fn batch(&mut self) {
        self.named.clear();
    }

    /// Reads (again) `tgid`'s mappings and perf map into blazesym's cache; false when the
    /// process is gone. Not while it exits: its maps are empty then, and blazesym would
    /// cache that over what it had.
    fn cache(&mut self, tgid: u32) -> bool {
        if !has_mappings(tgid) {
            self.cached.entry(tgid).or_insert(None);
            return false;
        }
        let at = crate::run::monotonic_ns();
        if self.cached.len() >= PROCESSES_KEPT && !self.cached.contains_key(&tgid) {
            self.cached.clear();
            self.symbolizer = Symbolizer::new();
        }
        let ok = self
            .symbolizer
            .cache(&Cache::Process(cache::Process::new(tgid.into())))
            .is_ok();
        // On a failure blazesym keeps what it had cached, and so is its time kept.
        if ok {
            self.cached.insert(tgid, Some(at));
        } else {
            self.cached.entry(tgid).or_insert(None);
        }
        ok
    }

    /// The frames of `addrs` (looked up at `lookup`), and whether one fell outside the
    /// cached mappings or perf map; None when blazesym could not read the process at all.
    fn symbolize(&self, tgid: u32, addrs: &[u64], lookup: &[u64]) -> Option<(Vec<Frame>, bool)> {
        let mut src = Process::new(tgid.into());
        src.perf_map = true;
        // The cached mappings' paths, not /proc/PID/map_files (gone with the process).
        src.map_files = false;
        src.debug_syms = false;
        let got = self
            .symbolizer
            .symbolize(&Source::Process(src), Input::AbsAddr(lookup))
            .ok()?;
        let mut unmapped = false;
        let frames = addrs
            .iter()
            .zip(lookup)
            .zip(got)
            .map(|((&addr, &looked), s)| match s {
                Symbolized::Sym(sym) => Frame {
                    addr,
                    symbol: Some(sym.name.into_owned()),
                    offset: Some((sym.offset as u64).saturating_add(addr - looked)),
                    // Only a perf map's symbols come without a file.
                    module: Some(sym.module.map_or_else(
                        || format!("/tmp/perf-{tgid}.map"),
                        |m| m.to_string_lossy().into_owned(),
                    )),
                    unknown: None,
                },
                Symbolized::Unknown(why) => {
                    unmapped |= matches!(why, Reason::Unmapped | Reason::UnknownAddr);
                    Frame::unknown(addr, reason(why))
                }
            })
            .collect();
        Some((frames, unmapped))
    }
}

impl Symbolize for Stacks {
    fn frames(&mut self, tgid: u32, addrs: &[u64], after_ns: u64) -> Vec<Frame> {
        if addrs.is_empty() {
            return Vec::new();
        }
        if let Some(f) = self.named.get(&(tgid, addrs.into())) {
            return f.clone();
        }
        let frames = self.name(tgid, addrs, after_ns);
        if frames.iter().all(|f| f.unknown.is_none()) {
            self.named.insert((tgid, addrs.into()), frames.clone());
        }
        frames
    }
}

impl Stacks {
    fn name(&mut self, tgid: u32, addrs: &[u64], after_ns: u64) -> Vec<Frame> {
        let cached_at = match self.cached.get(&tgid) {
            Some(&at) => at,
            None => {
                self.cache(tgid);
                self.cached.get(&tgid).copied().flatten()
            }
        };
        let Some(cached_at) = cached_at else {
            return addrs
                .iter()
                .map(|&a| Frame::unknown(a, "process gone before its stack was read"))
                .collect();
        };
        // A return address is the instruction after the call: the caller is looked up one
        // byte before it (else a call that ends its function names the next one).
        let lookup: Vec<u64> = addrs
            .iter()
            .enumerate()
            .map(|(i, &a)| if i == 0 { a } else { a.saturating_sub(1) })
            .collect();
        let mut got = self.symbolize(tgid, addrs, &lookup);
        // An address outside what was cached: read again, unless that was after the call
        // ended (a library it ran, JIT code it ran, was mapped and written by then).
        if got.as_ref().is_none_or(|g| g.1) && cached_at <= after_ns && self.cache(tgid) {
            got = self.symbolize(tgid, addrs, &lookup);
        }
        match got {
            Some((frames, _)) => frames,
            None => addrs
                .iter()
                .map(|&a| Frame::unknown(a, "not symbolized"))
                .collect(),
        }
    }
}

/// Whether `tgid` has any mappings (none when it is gone, or exiting).
fn has_mappings(tgid: u32) -> bool {
    use std::io::Read;
    let mut b = [0u8; 1];
    std::fs::File::open(format!("/proc/{tgid}/maps"))
        .and_then(|mut f| f.read(&mut b))
        .is_ok_and(|n| n > 0)
}

/// Why blazesym named no symbol, said shortly.
fn reason(why: Reason) -> &'static str {
    match why {
        Reason::Unmapped => "not mapped",
        Reason::MissingComponent => "anonymous memory",
        Reason::MissingSyms => "no symbols in its file",
        Reason::UnknownAddr => "no symbol there",
        Reason::InvalidFileOffset => "not in its file's code",
        _ => "not symbolized",
    }
}
