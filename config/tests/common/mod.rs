//! Shared by the config test files: a table of broken files, each expected
//! to be refused with a message at a line:column, and a hint.

#![allow(dead_code)] // each test file uses some of these

use tortie_config::parse_with_hostname;

/// (description, file text, expected message substring, line, column)
pub type Case = (&'static str, String, &'static str, usize, usize);

/// What is wrong with each case (empty: every one refused as expected).
pub fn failures(cases: Vec<Case>) -> Vec<String> {
    let mut failures = Vec::new();
    for (what, text, message, line, column) in cases {
        let err = match parse_with_hostname(&text, "t.toml", &|| Some("host".into())) {
            Ok(_) => {
                failures.push(format!("{what}: accepted:\n{text}"));
                continue;
            }
            Err(e) => e,
        };
        match err.problems.iter().find(|p| p.message.contains(message)) {
            None => failures.push(format!(
                "{what}: no problem contains {message:?}; got:\n{err}"
            )),
            Some(p) => {
                if (p.line, p.column) != (line, column) {
                    failures.push(format!(
                        "{what}: {message:?} at {}:{}, expected {line}:{column}",
                        p.line, p.column
                    ));
                }
                if p.hint.as_deref().is_none_or(str::is_empty) {
                    failures.push(format!("{what}: no hint"));
                }
                if p.file != "t.toml" {
                    failures.push(format!("{what}: file {}", p.file));
                }
            }
        }
    }
    failures
}

/// Asserts that every case is refused as expected.
pub fn assert_refused(cases: Vec<Case>) {
    let failures = failures(cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// [`assert_refused`] for keys appended to one file by `file`: (keys,
/// expected message substring, line, column).
pub fn assert_keys_refused(
    file: impl Fn(&str) -> String,
    cases: &[(&'static str, &'static str, usize, usize)],
) {
    let cases = cases
        .iter()
        .map(|&(keys, message, line, column)| (keys, file(keys), message, line, column))
        .collect();
    assert_refused(cases);
}
