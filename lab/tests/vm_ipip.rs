//! Tier 5 (DESIGN.md §8): the IP-in-IP datapath in a QEMU guest with a stock Debian kernel,
//! because this machine's kernel has no `ipip` (VM-NOTES.md, docs/vm.md).
//!
//! Flow: `lab/vm/setup` (idempotent; installs QEMU and caches a kernel once), then the guest
//! program `ipip_guest` (the lab example that drives tortie-routes) is built with cargo for the
//! same profile as this test, then `lab/vm/run-guest --guest-bin …` boots the guest, which
//! builds three nodes behind a router, attaches containers and programs routes with the tortie
//! code, and prints `TORTIE-VM-RESULT: PASS` only if the tunnel carries container pings that
//! plain routing (the negative control) cannot. The guest has no NIC: no traffic leaves it.
//!
//! Needs root. Under CI (env `CI` set) a non-root run fails instead of skipping.

mod vm_common;

use std::time::Instant;

use vm_common::{cargo_build, root_or_skip, run_guest, setup};

#[test]
fn ipip_datapath_in_a_qemu_guest() {
    if !root_or_skip() {
        return;
    }
    let setup = setup();

    let t = Instant::now();
    let guest = cargo_build(&["-p", "tortie-lab", "--example", "ipip_guest"])
        .join("examples")
        .join("ipip_guest");
    assert!(guest.is_file(), "cargo built no {}", guest.display());
    let build = t.elapsed();

    let (_, vm) = run_guest(&["--guest-bin".into(), guest.into_os_string()]);
    eprintln!(
        "vm_ipip: setup {:.1} s, guest build {:.1} s, VM {:.1} s",
        setup.as_secs_f64(),
        build.as_secs_f64(),
        vm.as_secs_f64()
    );
}
