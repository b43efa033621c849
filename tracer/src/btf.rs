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
    Ok(KernelOffsets {
        task_pid: member_offset(&btf, "task_struct", "pid")?,
        task_tgid: member_offset(&btf, "task_struct", "tgid")?,
        task_exit_code: member_offset(&btf, "task_struct", "exit_code")?,
        _pad: 0,
    })
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
    }
}
