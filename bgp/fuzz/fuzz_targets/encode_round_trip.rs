#![no_main]

#[path = "../../tests/wire_support/fuzzcheck.rs"]
mod fuzzcheck;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // encode -> decode: arbitrary attribute sets and prefixes through the packer.
    fuzzcheck::check_encode_from_bytes(data);
});
