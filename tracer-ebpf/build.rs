// Rebuild when the shared types change (cargo already tracks path dependencies; this
// only makes the intent explicit for the eBPF object that `tracer` embeds).
fn main() {
    println!("cargo:rerun-if-changed=../tracer-common/src");
}
