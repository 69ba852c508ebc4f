//! Shared by the config test files: a table of broken files, each expected
//! to be refused with a message at a line:column, and a hint.

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
