//! Compiles `bpf/steer.bpf.c` into a libbpf-rs skeleton (`$OUT_DIR/steer.skel.rs`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

const SOURCE: &str = "bpf/steer.bpf.c";
const INSTALL_HINT: &str = "apt-get install clang llvm libelf-dev libbpf-dev";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-env-changed=CLANG");

    let clang = env::var_os("CLANG").unwrap_or_else(|| "clang".into());
    match Command::new(&clang).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`{} --version` failed ({}): the BPF program {SOURCE} needs a working clang. \
             Install the BPF toolchain: {INSTALL_HINT}",
            clang.to_string_lossy(),
            out.status
        ),
        Err(err) => panic!(
            "clang not found ({err}): the BPF program {SOURCE} is compiled with clang. \
             Install the BPF toolchain: {INSTALL_HINT}"
        ),
    }

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let skel = out_dir.join("steer.skel.rs");
    let arch_include = format!("-I/usr/include/{}-linux-gnu", target_arch());
    if let Err(err) = SkeletonBuilder::new()
        .source(SOURCE)
        .clang(&clang)
        .clang_args([arch_include.as_str(), "-Wall", "-Werror"])
        .build_and_generate(&skel)
    {
        panic!(
            "building the BPF skeleton from {SOURCE} failed: {err:#}\n\
             If headers such as <asm/types.h>, <bpf/bpf_helpers.h> or <linux/bpf.h> are \
             missing, install the BPF toolchain: {INSTALL_HINT}"
        );
    }
}

/// The Debian multiarch directory name of the target (`x86_64`, `aarch64`, ...).
fn target_arch() -> String {
    env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".to_string())
}
