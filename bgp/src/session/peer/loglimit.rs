//! A per-peer budget for log lines: a peer that resets its sessions in a loop
//! must not fill the disk (each cycle makes several lines; 12,500 cycles made
//! 20 MB). Pure: the session task asks [`LogBudget::admit`] before each
//! info/warn line about its peer and logs only when told to.
//!
//! Data flow: `admit(now)` → [`Admit`]. Up to [`LINES_PER_WINDOW`] lines per
//! [`WINDOW`] are logged; the first line over budget is replaced by one notice,
//! the rest are counted; the first line logged in a later window carries the
//! count of the lines not logged (`suppressed=N`). Nothing is lost from
//! `tortie status` or the metrics, which count every event.

use std::time::Duration;

use tokio::time::Instant;

/// Lines per peer per window before lines are counted instead of logged.
pub(crate) const LINES_PER_WINDOW: u32 = 30;
/// The budget's window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// What to do with one log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Log it; `suppressed` lines were not logged before it (0: none).
    Log { suppressed: u64 },
    /// The budget just ran out: log one notice instead of this line.
    Exhausted,
    /// Count it, do not log it.
    Drop,
}

#[derive(Debug)]
pub(crate) struct LogBudget {
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    pub(crate) fn new() -> LogBudget {
        LogBudget {
            window_start: None,
            used: 0,
            suppressed: 0,
        }
    }

    pub(crate) fn admit(&mut self, now: Instant) -> Admit {
        let fresh = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
        if fresh {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used < LINES_PER_WINDOW {
            self.used += 1;
            return Admit::Log {
                suppressed: std::mem::take(&mut self.suppressed),
            };
        }
        self.suppressed += 1;
        if self.used == LINES_PER_WINDOW {
            self.used += 1;
            Admit::Exhausted
        } else {
            Admit::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flapping_peer_logs_a_bounded_number_of_lines_and_the_count_of_the_rest() {
        let start = Instant::now();
        let mut b = LogBudget::new();
        let mut logged = 0;
        // 10,000 lines within one window.
        for i in 0..10_000u64 {
            match b.admit(start + Duration::from_millis(i)) {
                Admit::Log { suppressed } => {
                    assert_eq!(suppressed, 0);
                    logged += 1;
                }
                Admit::Exhausted => assert_eq!(logged, LINES_PER_WINDOW),
                Admit::Drop => {}
            }
        }
        assert_eq!(logged, LINES_PER_WINDOW);
        // The next window's first line reports the lines not logged.
        assert_eq!(
            b.admit(start + WINDOW),
            Admit::Log {
                suppressed: 10_000 - u64::from(LINES_PER_WINDOW)
            }
        );
        assert_eq!(b.admit(start + WINDOW), Admit::Log { suppressed: 0 });
    }

    #[test]
    fn a_quiet_peer_logs_everything() {
        let start = Instant::now();
        let mut b = LogBudget::new();
        for i in 0..1000u64 {
            // Two lines a minute, for a long time.
            let at = start + Duration::from_secs(30 * i);
            assert_eq!(b.admit(at), Admit::Log { suppressed: 0 }, "line {i}");
        }
    }
}
