//! What tracer's programs need to know about the running kernel, read from its BTF: struct
//! member offsets, handed to the eBPF programs as a global (Rust eBPF has no CO-RE
//! relocations, and no offset is hard-coded), and the arguments each tracepoint passes.
//! Both change between kernels; they are found by name, with a fallback where a member
//! moved or an argument is missing, never from a kernel version number. What a kernel truly
//! lacks takes out only the sections that need it.
use std::{
    io::{Seek, Write},
    os::fd::AsRawFd,
};

use anyhow::{Context, Result, anyhow, bail};
use btf_rs::{Btf, Type};
use tracer_common::KernelOffsets;

use crate::cli::Section;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The running kernel's BTF.
pub struct KernelBtf {
    btf: Btf,
}

/// What this kernel offers tracer: the offsets, and the sections it cannot serve.
pub struct Support {
    pub offsets: KernelOffsets,
    /// A section this kernel cannot serve, with the first reason found (one line).
    pub missing: Vec<(Section, String)>,
}

impl KernelBtf {
    /// Opens the kernel's BTF. It is memory-mapped rather than parsed whole (parsing all of
    /// it doubled tracer's peak RSS); sysfs allows mapping it only from Linux 6.16, so on
    /// older kernels its bytes are copied into a memory file that can be mapped.
    pub fn open() -> Result<Self> {
        if !std::path::Path::new(VMLINUX).exists() {
            bail!(
                "kernel BTF is missing ({VMLINUX}); tracer needs a kernel built with CONFIG_DEBUG_INFO_BTF"
            );
        }
        let btf = match Btf::from_file_with_backend(VMLINUX, btf_rs::Backend::Mmap) {
            Ok(btf) => btf,
            Err(_) => Self::copied().with_context(|| format!("cannot read {VMLINUX}"))?,
        };
        Ok(Self { btf })
    }

    fn copied() -> Result<Btf> {
        let bytes = std::fs::read(VMLINUX)?;
        let fd =
            nix::sys::memfd::memfd_create(c"tracer-btf", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(&bytes)?;
        file.rewind()?;
        let path = format!("/proc/self/fd/{}", file.as_raw_fd());
        // The mapping keeps the memory file alive once `file` is closed.
        Btf::from_file_with_backend(path, btf_rs::Backend::Mmap).map_err(|e| anyhow!("{e}"))
    }

    /// Number of arguments (after the hidden context pointer) of a raw tracepoint, from its
    /// `btf_trace_<name>` typedef; None if the kernel has no such tracepoint.
    pub fn tracepoint_args(&self, tp: &str) -> Option<Vec<Type>> {
        let name = format!("btf_trace_{tp}");
        let t = self
            .btf
            .resolve_types_by_name(&name)
            .ok()?
            .into_iter()
            .next()?;
        let Type::Typedef(td) = t else { return None };
        let Ok(Type::Ptr(ptr)) = self.btf.resolve_chained_type(&td) else {
            return None;
        };
        let Ok(Type::FuncProto(proto)) = self.btf.resolve_chained_type(&ptr) else {
            return None;
        };
        let args = proto
            .parameters
            .iter()
            .skip(1)
            .map(|p| self.btf.resolve_chained_type(p).unwrap_or(Type::Void))
            .collect();
        Some(args)
    }

    /// The offsets, and which of `sections` this kernel cannot serve. `hooks` gives each
    /// section's tracepoints with the number of arguments its programs read at most.
    pub fn support(
        &self,
        sections: &[Section],
        hooks: impl Fn(Section) -> Vec<(&'static str, usize)>,
    ) -> Result<Support> {
        let b = &self.btf;
        // Every section reads task ids.
        let task_pid = member_offset(b, "task_struct", "pid")?;
        let task_tgid = member_offset(b, "task_struct", "tgid")?;
        let mut r = Resolver {
            btf: b,
            missing: Vec::new(),
        };
        use Section::*;
        // The syscall programs (used by the memory section too) and the sched section.
        let switch_args = self.tracepoint_args("sched_switch").map_or(0, |a| a.len());
        let switch_has_prev_state = u32::from(switch_args >= 4);
        let task_state = if switch_has_prev_state == 1 {
            0
        } else {
            let found = member_offset(b, "task_struct", "__state")
                .or_else(|_| member_offset(b, "task_struct", "state"));
            r.need(&[Syscalls, Memory, Sched], found)
        };
        let exit_has_group_dead = u32::from(
            self.tracepoint_args("sched_process_exit")
                .is_some_and(|a| a.len() >= 2),
        );
        let (signal_live, task_start_time) = if exit_has_group_dead == 1 {
            (0, 0)
        } else {
            (
                r.member(&[Life], "signal_struct", "live"),
                r.member(&[Life], "task_struct", "start_time"),
            )
        };
        let oom_victim_is_pid = u32::from(
            self.tracepoint_args("mark_victim")
                .and_then(|a| a.into_iter().next())
                .is_some_and(|t| matches!(t, Type::Int(_) | Type::Typedef(_))),
        );
        let (mm_rss_stat, rss_counter_stride, rss_counter_count) =
            r.need(&[Memory], rss_counters(b));
        let mm_counters = r.need(
            &[Memory],
            enum_values(
                b,
                &[
                    "MM_FILEPAGES",
                    "MM_ANONPAGES",
                    "MM_SWAPENTS",
                    "MM_SHMEMPAGES",
                ],
            ),
        );
        let mm_counter = |i: usize| mm_counters.get(i).copied().unwrap_or(0);
        let memory_cgrp_id = r.need(&[Memory], enum_values(b, &["memory_cgrp_id"]));
        let regs = (|| -> Result<(u32, u32, u32, u32)> {
            Ok((
                member_offset(b, "pt_regs", "ip")?,
                member_offset(b, "pt_regs", "cs")?,
                member_offset(b, "pt_regs", "ss")?,
                struct_size(b, "pt_regs")?,
            ))
        })()
        .ok();
        let offsets = KernelOffsets {
            task_pid,
            task_tgid,
            task_exit_code: r.member(&[Life], "task_struct", "exit_code"),
            task_mm: r.member(&[Memory], "task_struct", "mm"),
            task_comm: r.member(&[Memory, Life], "task_struct", "comm"),
            task_cgroups: r.member(&[Memory], "task_struct", "cgroups"),
            mm_rss_stat,
            rss_counter_stride,
            rss_counter_count,
            mm_start_brk: r.member(&[Memory], "mm_struct", "start_brk"),
            mm_total_vm: r.member(&[Memory], "mm_struct", "total_vm"),
            mm_file: mm_counter(0),
            mm_anon: mm_counter(1),
            mm_swap: mm_counter(2),
            mm_shmem: mm_counter(3),
            css_set_subsys: r.member(&[Memory], "css_set", "subsys"),
            memory_cgrp_id: memory_cgrp_id.first().copied().unwrap_or(0),
            css_cgroup: r.member(&[Memory], "cgroup_subsys_state", "cgroup"),
            cgroup_kn: r.member(&[Memory], "cgroup", "kn"),
            kernfs_id: r.member(&[Memory], "kernfs_node", "id"),
            kernfs_name: r.member(&[Memory], "kernfs_node", "name"),
            // x86_64 syscall arguments: rdi, rsi, rdx, r10.
            regs_arg0: r.member(&[Memory], "pt_regs", "di"),
            regs_arg1: r.member(&[Memory], "pt_regs", "si"),
            regs_arg2: r.member(&[Memory], "pt_regs", "dx"),
            regs_arg3: r.member(&[Memory], "pt_regs", "r10"),
            // i386 syscall arguments: ebx, ecx, edx, esi.
            regs_compat_arg0: r.member(&[Memory], "pt_regs", "bx"),
            regs_compat_arg1: r.member(&[Memory], "pt_regs", "cx"),
            regs_compat_arg2: r.member(&[Memory], "pt_regs", "dx"),
            regs_compat_arg3: r.member(&[Memory], "pt_regs", "si"),
            // The call stream's arguments 4 and 5: r8, r9; i386 edi, ebp.
            regs_arg4: r.member(&[Syscalls], "pt_regs", "r8"),
            regs_arg5: r.member(&[Syscalls], "pt_regs", "r9"),
            regs_compat_arg4: r.member(&[Syscalls], "pt_regs", "di"),
            regs_compat_arg5: r.member(&[Syscalls], "pt_regs", "bp"),
            task_ti_status: r.member(&[Syscalls, Memory], "task_struct", "thread_info")
                + r.member(&[Syscalls, Memory], "thread_info", "status"),
            task_ti_flags: r.member(&[Syscalls, Memory], "task_struct", "thread_info")
                + r.member(&[Syscalls, Memory], "thread_info", "flags"),
            page_size: nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
                .ok()
                .flatten()
                .unwrap_or(4096) as u32,
            task_min_flt: r.member(&[Memory], "task_struct", "min_flt"),
            task_maj_flt: r.member(&[Memory], "task_struct", "maj_flt"),
            task_signal: r.member(&[Memory, Life], "task_struct", "signal"),
            task_group_leader: r.member(&[Memory, Life], "task_struct", "group_leader"),
            signal_min_flt: r.member(&[Memory], "signal_struct", "min_flt"),
            signal_maj_flt: r.member(&[Memory], "signal_struct", "maj_flt"),
            task_files: r.member(&[Memory], "task_struct", "files"),
            files_fdt: r.member(&[Memory], "files_struct", "fdt"),
            fdtable_max_fds: r.member(&[Memory], "fdtable", "max_fds"),
            fdtable_open_fds: r.member(&[Memory], "fdtable", "open_fds"),
            fdtable_close_on_exec: r.member(&[Memory], "fdtable", "close_on_exec"),
            task_stack: r.member(&[Syscalls, Memory, Life], "task_struct", "stack"),
            switch_has_prev_state,
            task_state,
            exit_has_group_dead,
            signal_live,
            task_start_time,
            oom_victim_is_pid,
            siginfo_code: r.member(&[Life], "kernel_siginfo", "si_code"),
            task_start_boottime: r.member(&[Life], "task_struct", "start_boottime"),
            bprm_file: r.member(&[Life], "linux_binprm", "file"),
            bprm_filename: r.member(&[Life], "linux_binprm", "filename"),
            file_inode: r.member(&[Life], "file", "f_inode"),
            inode_ino: r.member(&[Life], "inode", "i_ino"),
            inode_sb: r.member(&[Life], "inode", "i_sb"),
            sb_dev: r.member(&[Life], "super_block", "s_dev"),
            // Optional: without them a stall's on-CPU and run-queue split is unknown.
            task_exec_runtime: pair(
                b,
                ("task_struct", "se"),
                ("sched_entity", "sum_exec_runtime"),
            ),
            task_run_delay: pair(
                b,
                ("task_struct", "sched_info"),
                ("sched_info", "run_delay"),
            ),
            // A crash's details are not worth the life section: without them, a crash
            // has no address (the union's UAPI place, 16 on 64-bit, is taken) or no ip.
            siginfo_fields: member_offset(b, "kernel_siginfo", "_sifields").unwrap_or(16),
            regs_ip: regs.map_or(0, |r| r.0),
            regs_cs: regs.map_or(0, |r| r.1),
            regs_ss: regs.map_or(0, |r| r.2),
            regs_size: regs.map_or(0, |r| r.3),
        };
        // Each program reads at most so many tracepoint arguments: a kernel passing fewer
        // refuses the attach (EINVAL).
        for &section in sections {
            for (tp, reads) in hooks(section) {
                let why = match self.tracepoint_args(tp) {
                    None => format!("this kernel has no tracepoint {tp}"),
                    Some(a) if a.len() < reads => format!(
                        "tracepoint {tp} passes {} arguments here, tracer reads {reads}",
                        a.len()
                    ),
                    Some(_) => continue,
                };
                r.missing.push((section, why));
            }
        }
        let mut missing: Vec<(Section, String)> = Vec::new();
        for (s, why) in r.missing {
            if sections.contains(&s) && !missing.iter().any(|(m, _)| *m == s) {
                missing.push((s, why));
            }
        }
        Ok(Support { offsets, missing })
    }
}

/// Collects what a kernel lacks, by the sections that need it.
struct Resolver<'a> {
    btf: &'a Btf,
    missing: Vec<(Section, String)>,
}

impl Resolver<'_> {
    fn need<T: Default>(&mut self, sections: &[Section], found: Result<T>) -> T {
        found.unwrap_or_else(|e| {
            for &s in sections {
                self.missing.push((s, format!("{e:#}")));
            }
            T::default()
        })
    }

    fn member(&mut self, sections: &[Section], name: &str, member: &str) -> u32 {
        let found = member_offset(self.btf, name, member);
        self.need(sections, found)
    }
}

/// Where `mm->rss_stat[i]`'s count lives: (offset of `rss_stat`, stride, offset of the
/// count in one element). From Linux 6.2 `struct percpu_counter rss_stat[]`, before
/// `struct mm_rss_stat { atomic_long_t count[]; } rss_stat`.
fn rss_counters(btf: &Btf) -> Result<(u32, u32, u32)> {
    let base = member_offset(btf, "mm_struct", "rss_stat")?;
    let ty = member_type(btf, "mm_struct", "rss_stat")?;
    match resolve(btf, ty)? {
        Type::Array(a) => {
            let elem = resolve(btf, btf.resolve_chained_type(&a)?)?;
            let Type::Struct(s) = elem else {
                bail!("BTF: mm_struct.rss_stat is an array of an unexpected type");
            };
            let count = find_member(btf, &s, "count")
                .ok_or_else(|| anyhow!("BTF: mm_struct.rss_stat elements have no count"))?;
            Ok((base, s.size() as u32, count / 8))
        }
        Type::Struct(s) => {
            let count = find_member(btf, &s, "count")
                .ok_or_else(|| anyhow!("BTF: mm_struct.rss_stat has no count"))?;
            let Some(m) = s
                .members
                .iter()
                .find(|m| btf.resolve_name(*m).is_ok_and(|n| n == "count"))
            else {
                bail!("BTF: mm_struct.rss_stat has no count");
            };
            let Type::Array(a) = resolve(btf, btf.resolve_chained_type(m)?)? else {
                bail!("BTF: mm_struct.rss_stat.count is not an array");
            };
            let elem = resolve(btf, btf.resolve_chained_type(&a)?)?;
            Ok((base + count / 8, type_size(&elem)?, 0))
        }
        _ => bail!("BTF: mm_struct.rss_stat has an unexpected type"),
    }
}

/// Follows typedefs and qualifiers to the type they name.
fn resolve(btf: &Btf, mut t: Type) -> Result<Type> {
    for _ in 0..16 {
        t = match &t {
            Type::Typedef(x) => btf.resolve_chained_type(x)?,
            Type::Volatile(x) | Type::Const(x) | Type::Restrict(x) => {
                btf.resolve_chained_type(x)?
            }
            Type::TypeTag(x) => btf.resolve_chained_type(x)?,
            _ => return Ok(t),
        };
    }
    bail!("BTF: type chain too long")
}

fn type_size(t: &Type) -> Result<u32> {
    Ok(match t {
        Type::Struct(s) | Type::Union(s) => s.size() as u32,
        Type::Int(i) => i.size() as u32,
        Type::Ptr(_) => 8,
        _ => bail!("BTF: a type of unknown size"),
    })
}

/// Type of `member` in `struct name` (looking through anonymous structs and unions).
fn member_type(btf: &Btf, name: &str, member: &str) -> Result<Type> {
    for t in btf.resolve_types_by_name(name).unwrap_or_default() {
        if let Type::Struct(s) = t
            && let Some(m) = find_member_ref(btf, &s, member)
        {
            return Ok(m);
        }
    }
    Err(anyhow!("BTF: struct {name} has no member {member}"))
}

fn find_member_ref(btf: &Btf, s: &btf_rs::Struct, member: &str) -> Option<Type> {
    for m in &s.members {
        let name = btf.resolve_name(m).unwrap_or_default();
        if name == member {
            return btf.resolve_chained_type(m).ok();
        }
        if name.is_empty()
            && let Ok(Type::Struct(inner) | Type::Union(inner)) = btf.resolve_chained_type(m)
            && let Some(t) = find_member_ref(btf, &inner, member)
        {
            return Some(t);
        }
    }
    None
}

/// Values of enumerators, all of one (possibly anonymous) enum: found by scanning the enums
/// for the first name.
pub fn enum_values(btf: &Btf, names: &[&str]) -> Result<Vec<u32>> {
    // Type ids are dense from 1; the first id that does not resolve is the end.
    let mut id = 1;
    while let Ok(t) = btf.resolve_type_by_id(id) {
        id += 1;
        let Type::Enum(e) = t else { continue };
        let members: Vec<(String, u32)> = e
            .members
            .iter()
            .map(|m| (btf.resolve_name(m).unwrap_or_default(), m.val()))
            .collect();
        if !members.iter().any(|(n, _)| n == names[0]) {
            continue;
        }
        return names
            .iter()
            .map(|want| {
                members
                    .iter()
                    .find(|(n, _)| n == want)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| anyhow!("BTF: enumerator {want} missing"))
            })
            .collect();
    }
    Err(anyhow!("BTF: no enumerator {}", names[0]))
}

/// Size in bytes of `struct name`.
pub fn struct_size(btf: &Btf, name: &str) -> Result<u32> {
    let types = btf
        .resolve_types_by_name(name)
        .map_err(|e| anyhow!("BTF: no type {name}: {e}"))?;
    for t in types {
        if let Type::Struct(s) = &t {
            return Ok(s.size() as u32);
        }
    }
    Err(anyhow!("BTF: no struct {name}"))
}

/// Byte offset of `member` in `struct name`, looking through anonymous structs and unions.
pub fn member_offset(btf: &Btf, name: &str, member: &str) -> Result<u32> {
    let types = btf
        .resolve_types_by_name(name)
        .map_err(|e| anyhow!("BTF: no type {name}: {e}"))?;
    for t in types {
        if let Type::Struct(s) = t
            && let Some(bits) = find_member(btf, &s, member)
        {
            if bits % 8 != 0 {
                bail!("BTF: {name}.{member} is a bit field");
            }
            return Ok(bits / 8);
        }
    }
    Err(anyhow!("BTF: struct {name} has no member {member}"))
}

/// The offset of `outer.0`'s member `outer.1`, a struct of type `inner.0`, plus that of its
/// member `inner.1`; 0 when either is missing (optional offsets).
fn pair(btf: &Btf, outer: (&str, &str), inner: (&str, &str)) -> u32 {
    match (
        member_offset(btf, outer.0, outer.1),
        member_offset(btf, inner.0, inner.1),
    ) {
        (Ok(a), Ok(b)) => a + b,
        _ => 0,
    }
}

/// Bit offset of `member` in `s`.
fn find_member(btf: &Btf, s: &btf_rs::Struct, member: &str) -> Option<u32> {
    for m in &s.members {
        let name = btf.resolve_name(m).unwrap_or_default();
        if name == member {
            return Some(m.bit_offset());
        }
        if name.is_empty() {
            // Anonymous struct or union: its members are members of the outer struct.
            if let Ok(Type::Struct(inner) | Type::Union(inner)) = btf.resolve_chained_type(m)
                && let Some(off) = find_member(btf, &inner, member)
            {
                return Some(m.bit_offset() + off);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_hooks(s: Section) -> Vec<(&'static str, usize)> {
        crate::probes::tracepoints(s)
    }

    fn kernel_btf() -> Option<KernelBtf> {
        if !std::path::Path::new(VMLINUX).exists() {
            crate::testing::skip(&format!("no {VMLINUX} on this kernel"));
            return None;
        }
        Some(KernelBtf::open().unwrap())
    }

    /// Reads this machine's BTF (no root needed): everything tracer needs resolves, and the
    /// offsets are consistent with each other. Run in each kernel of `cargo xtask matrix`.
    #[test]
    fn this_kernel_offers_every_section() {
        let Some(btf) = kernel_btf() else { return };
        let s = btf.support(&Section::all(), all_hooks).unwrap();
        assert!(s.missing.is_empty(), "{:?}", s.missing);
        let o = s.offsets;
        assert!(o.task_pid > 0 && o.task_tgid > 0 && o.task_exit_code > 0);
        // pid_t pid; pid_t tgid; are declared next to each other.
        assert_eq!(o.task_tgid, o.task_pid + 4);
        // enum { MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES } in every kernel
        // tracer supports; all distinct and small.
        let mut c = [o.mm_file, o.mm_anon, o.mm_swap, o.mm_shmem];
        c.sort_unstable();
        assert_eq!(c, [0, 1, 2, 3]);
        // percpu_counter { raw_spinlock_t lock; s64 count; ... } or atomic_long_t count[].
        assert!(o.rss_counter_stride >= 8 && o.rss_counter_count < o.rss_counter_stride);
        assert_eq!(o.regs_arg1, o.regs_arg0 - 8, "pt_regs: si just before di");
        // pt_regs { r15 ... r10 (7th), r9, r8, ax, cx (11th), dx, si, di, ... }; bx is the
        // 6th register (x86's order of `struct pt_regs` since 2.6).
        assert_eq!(o.regs_compat_arg3, o.regs_arg1);
        assert_eq!(o.regs_compat_arg2, o.regs_arg2);
        assert_eq!(o.regs_compat_arg1, o.regs_compat_arg2 - 8);
        assert_eq!(o.regs_compat_arg0, 5 * 8);
        // thread_info is task_struct's first member (THREAD_INFO_IN_TASK), its status after
        // `flags` (and `syscall_work` from 5.11).
        assert!(
            o.task_ti_status == 8 || o.task_ti_status == 16,
            "{}",
            o.task_ti_status
        );
        assert_eq!(o.page_size, 4096);
        // struct fdtable { unsigned int max_fds; struct file **fd; unsigned long
        // *close_on_exec; unsigned long *open_fds; ... }
        assert!(o.fdtable_max_fds < o.fdtable_close_on_exec);
        assert!(o.fdtable_close_on_exec < o.fdtable_open_fds);
        assert_eq!(o.task_maj_flt, o.task_min_flt + 8);
        assert_eq!(o.signal_maj_flt, o.signal_min_flt + 8);
        assert!(o.task_mm > 0 && o.task_files > 0 && o.task_cgroups > 0);
        // Where an argument is missing, its fallback was found.
        assert!(o.switch_has_prev_state == 1 || o.task_state > 0);
        assert!(o.exit_has_group_dead == 1 || (o.signal_live > 0 && o.task_start_time > 0));
    }

    /// Kernels before 6.16 refuse to map the BTF file: its copy reads the same.
    #[test]
    fn a_copy_of_the_btf_reads_like_the_file() {
        let Some(mapped) = kernel_btf() else { return };
        let copied = KernelBtf {
            btf: KernelBtf::copied().unwrap(),
        };
        let all = Section::all();
        assert_eq!(
            mapped.support(&all, all_hooks).unwrap().offsets,
            copied.support(&all, all_hooks).unwrap().offsets
        );
    }

    #[test]
    fn a_missing_member_takes_out_only_the_sections_that_need_it() {
        let Some(btf) = kernel_btf() else { return };
        let mut r = Resolver {
            btf: &btf.btf,
            missing: Vec::new(),
        };
        assert!(r.member(&[Section::Memory], "fdtable", "fd") > 0);
        assert_eq!(r.member(&[Section::Memory], "fdtable", "no_such_member"), 0);
        assert_eq!(
            r.missing,
            [(
                Section::Memory,
                "BTF: struct fdtable has no member no_such_member".to_string()
            )]
        );
        // A tracepoint that reads more arguments than the kernel passes.
        let s = btf
            .support(&[Section::Life, Section::Sched], |s| match s {
                Section::Life => vec![("sched_process_fork", 3)],
                _ => vec![("sched_switch", 1)],
            })
            .unwrap();
        assert_eq!(s.missing.len(), 1, "{:?}", s.missing);
        assert_eq!(s.missing[0].0, Section::Life);
        assert!(
            s.missing[0]
                .1
                .contains("passes 2 arguments here, tracer reads 3")
        );
    }
}
