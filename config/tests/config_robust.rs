//! Hostile input: thousands of mutated versions of the shipped example must
//! each give a Config or problems with positions inside the file — never a panic.

use std::path::Path;

/// Deterministic xorshift, so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

const PIECES: &[&str] = &[
    "=",
    "\"",
    "[",
    "]",
    "[[peer]]\n",
    "\n",
    "0",
    "-1",
    "4294967296",
    "true",
    "ü",
    "/",
    ".",
    "#",
    "{}",
    "999999999999999999999",
    "1979-05-27T07:32:00Z",
    "'",
    "\\u0000",
    "\u{0}",
    "/33",
];

#[test]
fn mutated_files_never_panic_and_positions_stay_inside_the_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tortie.toml");
    let example = std::fs::read_to_string(path).expect("example");
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut rejected = 0;
    for round in 0..3000 {
        let mut text = example.clone();
        for _ in 0..=rng.below(4) {
            // Mutate at a char boundary: delete a span, or insert a piece.
            let mut at = rng.below(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            if rng.below(2) == 0 {
                let mut end = (at + rng.below(12)).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, "");
            } else {
                text.insert_str(at, PIECES[rng.below(PIECES.len())]);
            }
        }
        let lines = text.lines().count().max(1) + 1;
        match tortie_config::parse_with_hostname(&text, "m.toml", &|| Some("h".into())) {
            Ok(_) => {}
            Err(e) => {
                rejected += 1;
                assert!(!e.problems.is_empty(), "round {round}: empty error");
                for p in &e.problems {
                    assert!(
                        p.line <= lines,
                        "round {round}: line {} of {lines}\n{text}",
                        p.line
                    );
                    assert!(!p.message.is_empty(), "round {round}");
                }
            }
        }
    }
    // The mutations must actually exercise the error paths.
    // (Many land in comments, which is fine.)
    assert!(
        rejected > 1000,
        "only {rejected} of 3000 mutated files were rejected"
    );
}
