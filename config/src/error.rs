//! Problems found in a configuration file, and how they are printed.
//!
//! Data flow: the parser and the validator push [`Problem`]s (byte spans are turned
//! into 1-based line:column by [`Locator`]); [`ConfigError`] carries all of them
//! and prints one `file:line:col: error: …` line per problem, plus its hint.

use std::fmt;
use std::ops::Range;

/// One thing wrong with the configuration, with where it is and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file name given to [`crate::load`] or [`crate::parse`].
    pub file: String,
    /// 1-based line; 0 when the problem is about the whole file (e.g. unreadable).
    pub line: usize,
    /// 1-based column in characters; 0 when `line` is 0.
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: error: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, self.line, self.column, self.message
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in one file (never empty). The validator does not stop at
/// the first problem, so an operator fixes the file in one pass.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Turns byte offsets of the source into line:column and collects problems.
pub(crate) struct Locator<'a> {
    file: &'a str,
    text: &'a str,
    pub(crate) problems: Vec<Problem>,
    /// Keys present in the file whose value was already reported as wrongly
    /// typed, as (start of their table's span, key): the validator must not
    /// call them missing as well (one message per problem).
    invalid: std::collections::HashSet<(usize, String)>,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Locator {
            file,
            text,
            problems: Vec::new(),
            invalid: std::collections::HashSet::new(),
        }
    }

    /// The source text at `span` (empty when out of bounds).
    pub(crate) fn text_at(&self, span: Range<usize>) -> &'a str {
        self.text.get(span).unwrap_or("")
    }

    /// Records that `key` of the table starting at `table` had a wrongly typed
    /// value (already reported): it is present, not missing.
    pub(crate) fn mark_invalid(&mut self, table: usize, key: &str) {
        self.invalid.insert((table, key.to_string()));
    }

    /// Reports `key` of the table at `table` as missing, unless it is present
    /// with a value already reported as wrongly typed.
    pub(crate) fn missing(&mut self, table: Range<usize>, key: &str, message: String, hint: &str) {
        if !self.invalid.contains(&(table.start, key.to_string())) {
            self.at(table, message, hint);
        }
    }

    /// 1-based line and column (in characters) of byte offset `at`.
    pub(crate) fn position(&self, at: usize) -> (usize, usize) {
        let at = at.min(self.text.len());
        // Offsets from toml always fall on char boundaries; be defensive anyway.
        let before = self.text.get(..at).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, column)
    }

    /// Records a problem located at `span` (None: the whole file).
    pub(crate) fn report(
        &mut self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let (line, column) = span.map_or((0, 0), |s| self.position(s.start));
        self.problems.push(Problem {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
            hint,
        });
    }

    pub(crate) fn at(&mut self, span: Range<usize>, message: impl Into<String>, hint: &str) {
        let hint = (!hint.is_empty()).then(|| hint.to_string());
        self.report(Some(span), message, hint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_characters() {
        let loc = Locator::new("f", "ab\nçd = 1\n");
        assert_eq!(loc.position(0), (1, 1));
        assert_eq!(loc.position(1), (1, 2));
        assert_eq!(loc.position(3), (2, 1));
        // 'ç' is two bytes but one column.
        assert_eq!(loc.position(5), (2, 2));
    }

    #[test]
    fn display_prints_one_line_per_problem_and_its_hint() {
        let err = ConfigError {
            problems: vec![
                Problem {
                    file: "t.toml".into(),
                    line: 12,
                    column: 9,
                    message: "peer 192.0.2.1 is listed twice".into(),
                    hint: Some("remove one".into()),
                },
                Problem {
                    file: "t.toml".into(),
                    line: 0,
                    column: 0,
                    message: "cannot read".into(),
                    hint: None,
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "t.toml:12:9: error: peer 192.0.2.1 is listed twice\n  hint: remove one\nt.toml: error: cannot read"
        );
    }
}
