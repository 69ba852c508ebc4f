//! Desired routes the reconciler could not install, and why: one
//! [`Failure`] per prefix (what `flush`, `install` and
//! `RouteTable::not_installed` report, and what `tortie routes` shows),
//! a WARN log line when a prefix starts failing or fails for a new reason
//! (at most [`LOG_BUDGET`] lines per [`LOG_WINDOW`], then one line counting
//! the rest), and counters by reason for the metrics.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;

use super::Reconciler;
use crate::error::errno_words;

/// WARN lines about refused routes per [`LOG_WINDOW`].
const LOG_BUDGET: u32 = 10;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Why a desired route is not in the kernel, as a short label (metrics) and
/// a sentence (logs, API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) kind: Kind,
    pub(crate) text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The kernel refused the request (positive errno).
    Refused(i32),
    /// A device the route names is missing or down.
    NoDevice,
    /// A route of another protocol holds the prefix at the same metric.
    Conflict,
}

impl Kind {
    /// The metric label: the errno's name (`ENETUNREACH`), `no_device` or
    /// `conflict`.
    pub(crate) fn label(self) -> String {
        match self {
            Kind::Refused(errno) => format!("{:?}", nix::errno::Errno::from_raw(errno)),
            Kind::NoDevice => "no_device".to_string(),
            Kind::Conflict => "conflict".to_string(),
        }
    }
}

impl Failure {
    /// A refused request: errno in words and the kernel's extended-ack
    /// text when it sent one (`what` is "route" or "delete").
    pub(crate) fn refused(what: &str, errno: i32, message: Option<&str>) -> Failure {
        let mut text = format!("kernel refused the {what}: {}", errno_words(errno));
        if let Some(m) = message.filter(|m| !m.is_empty()) {
            text.push_str(": ");
            text.push_str(m);
        }
        Failure {
            kind: Kind::Refused(errno),
            text,
        }
    }
}

/// The log budget.
pub(crate) struct LogBudget {
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }
}

impl LogBudget {
    /// Whether one more line may be logged now; opens a new window (and
    /// reports what the last one suppressed) when it is time.
    fn allow(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window) >= LOG_WINDOW {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "{} more route(s) not installed in the last {LOG_WINDOW:?} (see `tortie routes`)",
                    self.suppressed
                );
            }
            self.window = now;
            self.used = 0;
            self.suppressed = 0;
        }
        if self.used < LOG_BUDGET {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

/// Counters by reason label.
pub(crate) type ByReason = BTreeMap<String, u64>;

impl Reconciler {
    /// Record that `p` is not installed, and why. Logged at WARN when the
    /// prefix was not failing, or failed for another reason (budgeted);
    /// kernel refusals are counted by errno.
    pub(super) fn fail(&mut self, p: IpNetwork, f: Failure) {
        if let Kind::Refused(_) = f.kind {
            self.counters.netlink_errors += 1;
            *self.counters.refused.entry(f.kind.label()).or_default() += 1;
        }
        let new = self.failed.get(&p).is_none_or(|old| old.kind != f.kind);
        if new && self.log_budget.allow(Instant::now()) {
            tracing::warn!(prefix = %p, reason = %f.kind.label(), "route not installed: {}", f.text);
        }
        self.failed.insert(p, f);
    }

    /// Desired prefixes not installed, by reason label (a gauge).
    pub(super) fn not_installed_by_reason(&self) -> ByReason {
        let mut out = ByReason::new();
        for (p, f) in &self.failed {
            if self.slots.is_desired(p) {
                *out.entry(f.kind.label()).or_default() += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_text() {
        assert_eq!(Kind::Refused(libc::ENETUNREACH).label(), "ENETUNREACH");
        assert_eq!(Kind::NoDevice.label(), "no_device");
        assert_eq!(Kind::Conflict.label(), "conflict");
        let f = Failure::refused(
            "route",
            libc::ENETUNREACH,
            Some("Nexthop has invalid gateway"),
        );
        assert_eq!(
            f.text,
            "kernel refused the route: Network is unreachable (ENETUNREACH): Nexthop has invalid gateway"
        );
        assert_eq!(
            Failure::refused("delete", libc::EINVAL, None).text,
            "kernel refused the delete: Invalid argument (EINVAL)"
        );
    }

    #[test]
    fn log_budget_is_per_window() {
        let mut b = LogBudget::default();
        let t0 = b.window;
        let allowed = (0..25).filter(|_| b.allow(t0)).count();
        assert_eq!(allowed, LOG_BUDGET as usize);
        assert_eq!(b.suppressed, 15);
        assert!(b.allow(t0 + LOG_WINDOW));
        assert_eq!((b.used, b.suppressed), (1, 0));
    }
}
