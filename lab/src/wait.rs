//! Polling helper: wait until a condition holds, with a deadline.

use std::time::{Duration, Instant};

use crate::error::{LabError, Result};

/// Polls `condition` every 100 ms until it returns `Some`, or fails with
/// [`LabError::Timeout`] naming `what` after `timeout`. The condition runs at
/// least once, and once more at the deadline.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = condition() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(LabError::Timeout(timeout, what.to_string()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Like [`wait_until`] for a boolean condition.
pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) -> Result<()> {
    wait_until(what, timeout, || condition().then_some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_value_when_condition_holds() {
        let mut n = 0;
        let v = wait_until("n reaches 3", Duration::from_secs(5), || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(v.ok(), Some(3));
    }

    #[test]
    fn times_out() {
        let r = wait_for("never", Duration::from_millis(250), || false);
        assert!(matches!(r, Err(LabError::Timeout(_, ref w)) if w == "never"));
    }
}
