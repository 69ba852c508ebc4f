#![no_main]

#[path = "../../tests/wire_support/fuzzcheck.rs"]
mod fuzzcheck;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzzcheck::check_frame(data);
});
