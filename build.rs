//! Links the `ecrd` binary as a position-dependent executable on Linux
//! with glibc: a position-independent one makes the dynamic loader apply
//! about 40,000 relocations at every start, which read 950 KiB of
//! relocation records and write 640 KiB of tables (vtables, string
//! tables) before `main`. Without them ecrd answers its first request in
//! 3.4 ms instead of 5.5 and starts with 0.7 MiB less resident memory
//! (`benches/api_bench.py`). The cost is that the binary's own code and
//! data are not placed at a random address (its heap, stacks and shared
//! libraries still are), acceptable for a local emulator.
//!
//! Only the binaries: tests and examples link as before. A static build
//! (`-C target-feature=+crt-static`, the container image) stays a static
//! position-independent executable, which the loader inside it relocates.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" && !static_crt
    {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
