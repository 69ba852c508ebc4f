#![no_main]

#[path = "../../tests/wire_support/fuzzcheck.rs"]
mod fuzzcheck;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // First byte picks the context (2/4-octet AS, extended message, iBGP, ...),
    // the rest is an UPDATE body after a correct header: RFC 7606 paths,
    // attribute cache agreement and decode -> encode -> decode.
    if let Some((sel, body)) = data.split_first() {
        fuzzcheck::check_update_body(*sel, body);
    }
});
