#![no_main]

#[path = "../../tests/wire_support/fuzzcheck.rs"]
mod fuzzcheck;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // First byte picks the session context, the rest is one whole message
    // (any type: OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH); decoded
    // messages must round-trip through the encoder.
    if let Some((sel, msg)) = data.split_first() {
        fuzzcheck::check_message(*sel, msg);
    }
});
