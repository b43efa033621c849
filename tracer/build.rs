//! Embeds the eBPF object built by `cargo xtask build-ebpf`. If it is missing, the crate
//! still compiles far enough to stop with one clear line: run `cargo xtask build`.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tracer_missing_ebpf)");
    println!("cargo:rerun-if-env-changed=TRACER_EBPF_OBJ");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target"));
    let obj = env::var_os("TRACER_EBPF_OBJ")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir.join("bpfel-unknown-none/release/tracer"));
    println!("cargo:rerun-if-changed={}", obj.display());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("tracer.bpf.o");
    match fs::read(&obj) {
        Ok(bytes) => fs::write(&out, bytes).unwrap(),
        Err(_) => {
            fs::write(&out, []).unwrap();
            println!("cargo:rustc-cfg=tracer_missing_ebpf");
        }
    }
}
