//! Link arguments for the no-libc `tortie-cni` (feature `nolibc`, x86_64
//! Linux only; see agent/src/bin/tortie-cni/main.rs): no C start files, no
//! libc, a static non-PIE executable (no loader, no relocations to apply).
//! Every other build of every target is linked as usual.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let nolibc = std::env::var_os("CARGO_FEATURE_NOLIBC").is_some();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if nolibc && arch == "x86_64" && os == "linux" {
        for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie"] {
            println!("cargo::rustc-link-arg-bin=tortie-cni={arg}");
        }
    }
}
