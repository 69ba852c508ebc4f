//! Tier 5 (DESIGN.md §8): the IP-in-IP datapath of the real agent in a QEMU guest with a stock
//! Debian kernel, because this machine's kernel has no `ipip` (VM-NOTES.md, docs/vm.md).
//!
//! Flow: `lab/vm/setup` (idempotent; installs QEMU and caches a kernel once), then `tortie` is
//! built with cargo for the same profile as this test (a no-op when CI has built it), then
//! `lab/vm/run-guest --bin …/tortie` boots the guest with the binary stripped into its
//! initramfs. The guest (`lab/vm/guest/scenario.sh`) builds three nodes on two subnets behind a
//! router that has no pod routes, runs `tortie run` in each node with a config it writes, attaches
//! containers with `tortie attach`, and restarts the agents with encapsulation `ipip-cross-subnet`,
//! `ipip` and `none` (negative control: no route may keep using tunl0, pings across the router
//! must fail), checking kernel
//! routes, `tunl0` and its counters, MTUs and pings. It prints `TORTIE-VM-RESULT: PASS` only if
//! every check passed; this test decides from the serial log. No traffic leaves the guest.
//!
//! Needs root. Under CI (env `CI` set) a non-root run fails instead of skipping.

mod vm_common;

use std::time::Instant;

use vm_common::{cargo_build, root_or_skip, run_guest, setup};

#[test]
fn ipip_agent_in_a_qemu_guest() {
    if !root_or_skip() {
        return;
    }
    let setup = setup();

    let t = Instant::now();
    let tortie = cargo_build(&["-p", "tortie-agent", "--bin", "tortie"]).join("tortie");
    assert!(tortie.is_file(), "cargo built no {}", tortie.display());
    let build = t.elapsed();

    let (log, vm) = run_guest(&["--bin".into(), tortie.into_os_string()]);
    // The three phases ran (the PASS line alone would also follow a scenario cut short).
    for phase in [
        "== ipip-cross-subnet",
        "== ipip (always)",
        "== negative control: encapsulation none",
        "== end",
    ] {
        assert!(
            log.lines().any(|l| l.starts_with(phase)),
            "guest log lacks the phase {phase:?}\n{log}"
        );
    }
    eprintln!(
        "vm_ipip: setup {:.1} s, build {:.1} s, VM {:.1} s",
        setup.as_secs_f64(),
        build.as_secs_f64(),
        vm.as_secs_f64()
    );
}
