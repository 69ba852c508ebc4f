//! tortie against tortie over a veth: the BFD implementation facing itself
//! (both ends `bfd = true`, 300 ms × 3), session and BFD up, then a silent
//! cut (see tests/common's `check_bfd_failover`).

mod common;

use common::*;

#[test]
fn tortie_bfd_between_two_speakers_failover() {
    let Some(pair) = pair("tl-it1") else { return };
    let theirs = pair.start_their_tortie(true);
    let node = pair.start_tortie(&pair.tortie_bfd_config(false));
    wait_established(&theirs, &node);
    check_routes_both_ways(&pair, &theirs, &node);
    check_bfd_failover(&pair, &theirs, &node, bfd_cuts(1));
}
