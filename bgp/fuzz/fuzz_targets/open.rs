#![no_main]

#[path = "../../tests/wire_support/fuzzcheck.rs"]
mod fuzzcheck;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The OPEN body after a correct header: capabilities and parameters.
    fuzzcheck::check_open_body(data);
});
