//! Kernel struct member offsets, read from the running kernel's BTF and handed to the eBPF
//! programs as a global (Rust eBPF has no CO-RE relocations, and no offset is hard-coded).
use anyhow::{Context, Result, anyhow, bail};
use btf_rs::{Btf, Type};
use tracer_common::KernelOffsets;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// Reads the offsets tracer needs. Fails with one line if the kernel has no BTF.
pub fn kernel_offsets() -> Result<KernelOffsets> {
    if !std::path::Path::new(VMLINUX).exists() {
        bail!(
            "kernel BTF is missing ({VMLINUX}); tracer needs a kernel built with CONFIG_DEBUG_INFO_BTF"
        );
    }
    let btf = Btf::from_file_with_backend(VMLINUX, btf_rs::Backend::Mmap)
        .map_err(|e| anyhow!("cannot parse {VMLINUX}: {e}"))?;
    let mm_counters = enum_values(
        &btf,
        &[
            "MM_FILEPAGES",
            "MM_ANONPAGES",
            "MM_SWAPENTS",
            "MM_SHMEMPAGES",
        ],
    )?;
    Ok(KernelOffsets {
        task_pid: member_offset(&btf, "task_struct", "pid")?,
        task_tgid: member_offset(&btf, "task_struct", "tgid")?,
        task_exit_code: member_offset(&btf, "task_struct", "exit_code")?,
        task_mm: member_offset(&btf, "task_struct", "mm")?,
        task_comm: member_offset(&btf, "task_struct", "comm")?,
        task_cgroups: member_offset(&btf, "task_struct", "cgroups")?,
        mm_rss_stat: member_offset(&btf, "mm_struct", "rss_stat")?,
        mm_start_brk: member_offset(&btf, "mm_struct", "start_brk")?,
        mm_total_vm: member_offset(&btf, "mm_struct", "total_vm")?,
        percpu_counter_size: struct_size(&btf, "percpu_counter")?,
        percpu_counter_count: member_offset(&btf, "percpu_counter", "count")?,
        mm_file: mm_counters[0],
        mm_anon: mm_counters[1],
        mm_swap: mm_counters[2],
        mm_shmem: mm_counters[3],
        css_set_subsys: member_offset(&btf, "css_set", "subsys")?,
        memory_cgrp_id: enum_values(&btf, &["memory_cgrp_id"])?[0],
        css_cgroup: member_offset(&btf, "cgroup_subsys_state", "cgroup")?,
        cgroup_kn: member_offset(&btf, "cgroup", "kn")?,
        kernfs_id: member_offset(&btf, "kernfs_node", "id")?,
        kernfs_name: member_offset(&btf, "kernfs_node", "name")?,
        // x86_64 syscall arguments: rdi, rsi, rdx, r10.
        regs_arg0: member_offset(&btf, "pt_regs", "di")?,
        regs_arg1: member_offset(&btf, "pt_regs", "si")?,
        regs_arg2: member_offset(&btf, "pt_regs", "dx")?,
        regs_arg3: member_offset(&btf, "pt_regs", "r10")?,
        page_size: nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .unwrap_or(4096) as u32,
        task_min_flt: member_offset(&btf, "task_struct", "min_flt")?,
        task_maj_flt: member_offset(&btf, "task_struct", "maj_flt")?,
        task_signal: member_offset(&btf, "task_struct", "signal")?,
        task_group_leader: member_offset(&btf, "task_struct", "group_leader")?,
        signal_min_flt: member_offset(&btf, "signal_struct", "min_flt")?,
        signal_maj_flt: member_offset(&btf, "signal_struct", "maj_flt")?,
        task_files: member_offset(&btf, "task_struct", "files")?,
        files_fdt: member_offset(&btf, "files_struct", "fdt")?,
        fdtable_max_fds: member_offset(&btf, "fdtable", "max_fds")?,
        fdtable_open_fds: member_offset(&btf, "fdtable", "open_fds")?,
        fdtable_close_on_exec: member_offset(&btf, "fdtable", "close_on_exec")?,
        task_stack: member_offset(&btf, "task_struct", "stack")?,
    })
}

/// Size in bytes of `struct name`.
pub fn struct_size(btf: &Btf, name: &str) -> Result<u32> {
    let types = btf
        .resolve_types_by_name(name)
        .map_err(|e| anyhow!("BTF: no type {name}: {e}"))?;
    for t in types {
        if let Type::Struct(s) = t {
            return Ok(s.size() as u32);
        }
    }
    Err(anyhow!("BTF: no struct {name}")).context("kernel not supported")
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
    Err(anyhow!("BTF: no enumerator {}", names[0])).context("kernel not supported")
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
    Err(anyhow!("BTF: struct {name} has no member {member}")).context("kernel not supported")
}

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

    /// Reads this machine's BTF (no root needed): the offsets exist and are distinct.
    #[test]
    fn task_struct_offsets_resolve() {
        if !std::path::Path::new(VMLINUX).exists() {
            eprintln!("SKIPPED: no {VMLINUX} on this kernel");
            return;
        }
        let o = kernel_offsets().unwrap();
        assert!(o.task_pid > 0 && o.task_tgid > 0 && o.task_exit_code > 0);
        assert_ne!(o.task_pid, o.task_tgid);
        // pid_t pid; pid_t tgid; are declared next to each other.
        assert_eq!(o.task_tgid, o.task_pid + 4);
        // enum { MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES } in every kernel
        // tracer supports; all distinct and small.
        let mut c = [o.mm_file, o.mm_anon, o.mm_swap, o.mm_shmem];
        c.sort_unstable();
        assert_eq!(c, [0, 1, 2, 3]);
        assert!(o.percpu_counter_size > o.percpu_counter_count);
        assert_eq!(o.regs_arg1, o.regs_arg0 - 8, "pt_regs: si just before di");
        assert_eq!(o.page_size, 4096);
        // struct fdtable { unsigned int max_fds; struct file **fd; unsigned long
        // *close_on_exec; unsigned long *open_fds; ... }
        assert!(o.fdtable_max_fds < o.fdtable_close_on_exec);
        assert!(o.fdtable_close_on_exec < o.fdtable_open_fds);
        assert_eq!(o.task_maj_flt, o.task_min_flt + 8);
        assert_eq!(o.signal_maj_flt, o.signal_min_flt + 8);
        assert!(o.task_mm > 0 && o.task_files > 0 && o.task_cgroups > 0);
    }
}
