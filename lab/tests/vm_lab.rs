//! Topology 5 (`ipip-cross-subnet`) played with the real runner inside the QEMU guest, because
//! this machine's kernel has no `ipip` (VM-NOTES.md, docs/vm.md, docs/lab.md).
//!
//! Flow: `lab/vm/setup` (idempotent; installs QEMU and caches a stock Debian kernel once), then
//! `tortie` and `tortie-lab` are built with cargo for the same profile as this test, then
//! `lab/vm/run-guest --lab lab/topologies/ipip-cross-subnet.clab.yml --bin … --bin …` boots the
//! guest, whose scenario (`lab/vm/guest/lab.sh`) runs `tortie-lab up` on the file, waits until
//! every node's `tortie status -o json` shows all its configured peers Established, pings every
//! container from every other one, checks each learned block's kernel route (`dev tunl0 onlink`
//! towards the other subnet, plain inside the subnet) and the tunl0 counters, runs
//! `tortie-lab down` and checks nothing is left. It prints `TORTIE-VM-RESULT: PASS` only if
//! every check passed. The guest has no NIC: no traffic leaves it.
//!
//! Needs root. Under CI (env `CI` set) a non-root run fails instead of skipping.

mod vm_common;

use std::time::Instant;

use vm_common::{cargo_build, root_or_skip, run_guest, setup, workspace_root};

const TOPOLOGY: &str = "lab/topologies/ipip-cross-subnet.clab.yml";

#[test]
fn ipip_cross_subnet_topology_in_a_qemu_guest() {
    if !root_or_skip() {
        return;
    }
    let setup = setup();

    let t = Instant::now();
    let dir = cargo_build(&[
        "-p",
        "tortie-agent",
        "--bin",
        "tortie",
        "-p",
        "tortie-lab",
        "--bin",
        "tortie-lab",
    ]);
    let (tortie, lab) = (dir.join("tortie"), dir.join("tortie-lab"));
    for b in [&tortie, &lab] {
        assert!(b.is_file(), "cargo built no {}", b.display());
    }
    let build = t.elapsed();

    let (stdout, vm) = run_guest(&[
        "--lab".into(),
        workspace_root().join(TOPOLOGY).into_os_string(),
        "--bin".into(),
        tortie.into_os_string(),
        "--bin".into(),
        lab.into_os_string(),
    ]);
    let log = &stdout;
    for needle in [
        "configured peers Established",
        "goes through tunl0 onlink",
        "is plain",
        "container pairs ping",
        "crossed n1's tunl0",
        "no namespace of lab ipip-cross-subnet left",
    ] {
        assert!(
            stdout.contains(needle),
            "guest log lacks the check {needle:?}\n{log}"
        );
    }
    eprintln!(
        "vm_lab: setup {:.1} s, build {:.1} s, VM {:.1} s",
        setup.as_secs_f64(),
        build.as_secs_f64(),
        vm.as_secs_f64()
    );
}
