//! The [`Command::Install`](crate::table::Command::Install) callers waiting
//! for their prefix to settle, the answer each gets ([`verdict`], a pure
//! function of the prefix's state), and the invariant those answers rest on;
//! the prefixes a caller writes itself ([`Command::Expect`](crate::table::Command::Expect),
//! `expected`) and the answers to the other waiters (`flush`, `converged`,
//! `installed`, `not_installed`).
//!
//! Data flow: `Reconciler::command` queues an [`Install`]; right after each
//! buffer the kernel settled, the installed ones are answered; once the
//! reconciler is idle (nothing dirty, nothing encoded), every one is: `Ok`,
//! or `NotInstalled` with the reason. An idle reconciler never leaves a
//! caller waiting.
//!
//! The invariant: when idle, every desired prefix is installed, failed
//! (with why) or expected (its caller writes it, `Command::Expect`). One that is neither was lost track of — a bug; one made a
//! CNI ADD wait 60 s (see `Reconciler::run`). Before installs or waiters
//! are answered, [`Reconciler::relook_lost`] finds such prefixes (a count
//! first: only a mismatch scans the slots), logs them and makes them dirty,
//! so they are written again; an install whose prefix is still lost after
//! that gets an error saying so.

use std::sync::Arc;

use ipnetwork::IpNetwork;
use tokio::sync::oneshot;

use super::failures::Failure;
use super::hash::Shared;
use super::{Reconciler, Waiter};
use crate::error::RoutesError;
use crate::types::KernelRoute;

/// What an idle reconciler answers for a prefix it lost track of.
const LOST: &str =
    "neither installed nor refused, with nothing left to do (the route table lost track of it)";

/// One caller of [`crate::RouteTable::install`] waiting for its prefix.
pub(super) struct Install {
    prefix: IpNetwork,
    tx: oneshot::Sender<Result<(), RoutesError>>,
}

/// What to do with a waiting install.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Not settled yet, and the reconciler is not idle: keep waiting.
    Wait,
    Installed,
    NotInstalled(String),
}

/// The answer for an install of a prefix with the desired route `desired`,
/// our route in the kernel `kernel` (as last seen) and the failure `failed`;
/// `idle`: nothing dirty or encoded. Settled as asked → installed; otherwise
/// only when idle: no longer desired → superseded; failed → its reason;
/// neither → lost.
fn verdict(
    desired: Option<&Shared>,
    kernel: Option<&Shared>,
    failed: Option<&Failure>,
    idle: bool,
) -> Verdict {
    match (desired, kernel) {
        (Some(d), Some(k)) if Arc::ptr_eq(d, k) || d.satisfied_by(k) => Verdict::Installed,
        _ if !idle => Verdict::Wait,
        (None, _) => Verdict::NotInstalled("superseded: no longer desired".to_string()),
        _ => Verdict::NotInstalled(failed.map_or(LOST, |f| f.text.as_str()).to_string()),
    }
}

impl Reconciler {
    /// Queue an install of `p` (its desire was just set).
    pub(super) fn wait_install(
        &mut self,
        p: IpNetwork,
        tx: oneshot::Sender<Result<(), RoutesError>>,
    ) {
        self.installs.push(Install { prefix: p, tx });
    }

    /// Answer the waiting installs whose prefix is settled: installed as
    /// desired, refused (in `failed`), or no longer desired as asked. Only
    /// with nothing encoded and not yet sent (the kernel side is recorded
    /// when a request is encoded): right after a buffer was sent and
    /// settled, only the installed ones are answered (a newer desire of a
    /// failed prefix may still be dirty); when `idle` (nothing dirty
    /// either), all (after [`relook_lost`](Self::relook_lost)). So an
    /// attach does not wait for a bulk load to finish.
    pub(super) fn answer_installs(&mut self, idle: bool) {
        let mut i = 0;
        while let Some(w) = self.installs.get(i) {
            let p = w.prefix;
            let answer = match verdict(
                self.slots.desired(&p),
                self.slots.kernel(&p),
                self.failed.get(&p),
                idle,
            ) {
                Verdict::Wait => {
                    i += 1;
                    continue;
                }
                Verdict::Installed => Ok(()),
                Verdict::NotInstalled(reason) => {
                    Err(RoutesError::NotInstalled { prefix: p, reason })
                }
            };
            let w = self.installs.swap_remove(i);
            let _ = w.tx.send(answer);
        }
    }

    /// The invariant (module docs), checked when idle before installs or
    /// waiters are answered: desired prefixes neither installed nor failed
    /// are logged and made dirty. O(failed) when none is (the slots keep
    /// the installed count); a scan of the slots when one is. Returns
    /// whether any was.
    pub(super) fn relook_lost(&mut self) -> bool {
        if self.installs.is_empty() && self.waiters.is_empty() {
            return false;
        }
        let installed: u64 = self.slots.installed().all.iter().sum();
        let unsettled = (self.slots.desired_len() as u64).saturating_sub(installed);
        let failed = self
            .failed
            .keys()
            .chain(
                self.expected
                    .iter()
                    .filter(|p| !self.failed.contains_key(p)),
            )
            .filter(|p| self.slots.is_desired(p) && !self.slots.is_installed(p))
            .count() as u64;
        if unsettled <= failed {
            return false;
        }
        let lost: Vec<IpNetwork> = self
            .slots
            .desired_iter()
            .map(|(p, _)| p)
            .filter(|p| {
                !self.slots.is_installed(p)
                    && !self.failed.contains_key(p)
                    && !self.expected.contains(p)
            })
            .collect();
        if let Some(first) = lost.first() {
            tracing::warn!(
                count = lost.len(),
                first = %first,
                "desired routes neither installed nor refused with nothing left to do (lost track of): writing them again"
            );
        }
        let found = !lost.is_empty();
        self.dirty.extend(lost);
        found
    }
}

impl Reconciler {
    /// [`Command::Expect`](crate::table::Command::Expect): desire `r` for `p` without writing it — the
    /// caller writes it ([`crate::RouteTable::expect`]) — and, unless the
    /// kernel is known to hold it already, wait for the kernel to be seen
    /// holding it (`expected`; `apply` writes nothing for `p` meanwhile).
    pub(super) fn expect(&mut self, p: IpNetwork, r: Shared) {
        self.desire(p, r, false);
        if !self.adopted.is_empty() {
            // Its write's notification came first: the caller's, not adopted.
            self.adopted.remove(&p);
        }
        if !self.slots.is_installed(&p) {
            self.expected.insert(p);
        }
    }

    /// Answer `flush`, `converged`, `installed` and `not_installed` once
    /// idle.
    pub(super) fn answer_waiters(&mut self) {
        if !self.idle() {
            return;
        }
        for w in std::mem::take(&mut self.waiters) {
            match w {
                Waiter::Converged(tx) => {
                    let _ = tx.send(());
                }
                Waiter::Installed(tx) => {
                    let _ = tx.send(
                        self.slots
                            .kernel_iter()
                            .map(|(p, r)| (p, KernelRoute::clone(r)))
                            .collect(),
                    );
                }
                Waiter::NotInstalled(tx) => {
                    let _ = tx.send(
                        self.failed
                            .iter()
                            .filter(|(p, _)| self.slots.is_desired(p))
                            .map(|(p, f)| (*p, f.text.clone()))
                            .collect(),
                    );
                }
                Waiter::Flush(tx) => {
                    let missing = self.failed.iter().find(|(p, _)| self.slots.is_desired(p));
                    let result = match missing {
                        None => Ok(()),
                        Some((p, f)) => Err(RoutesError::Incomplete {
                            failed: self
                                .failed
                                .keys()
                                .filter(|p| self.slots.is_desired(p))
                                .count(),
                            first: format!("{p}: {}", f.text),
                        }),
                    };
                    let _ = tx.send(result);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::failures::Kind;
    use crate::types::KernelRoute;

    fn local(dev: &str) -> Shared {
        Arc::new(KernelRoute::Local { dev: dev.into() })
    }

    #[test]
    fn an_idle_reconciler_answers_every_install() {
        let (a, a2, b) = (local("tt0"), local("tt0"), local("tt1"));
        let no_device = Failure {
            kind: Kind::NoDevice,
            text: "device tt0 does not exist or is down".into(),
        };
        // Installed: the same route, or an equal one, answers at once.
        for idle in [false, true] {
            assert_eq!(verdict(Some(&a), Some(&a), None, idle), Verdict::Installed);
            assert_eq!(verdict(Some(&a), Some(&a2), None, idle), Verdict::Installed);
        }
        // Anything else waits while there is work left…
        for (d, k, f) in [
            (Some(&a), None, None),
            (Some(&a), Some(&b), None),
            (Some(&a), None, Some(&no_device)),
            (None, Some(&a), None),
        ] {
            assert_eq!(verdict(d, k, f, false), Verdict::Wait);
        }
        // …and is answered once idle: superseded, refused with the reason…
        assert!(matches!(
            verdict(None, Some(&a), None, true),
            Verdict::NotInstalled(r) if r.starts_with("superseded")
        ));
        assert_eq!(
            verdict(Some(&a), None, Some(&no_device), true),
            Verdict::NotInstalled(no_device.text.clone())
        );
        // …or, neither installed nor failed (the state a relinked veth left
        // an install in, waiting for ever; `relook_lost` has written it
        // again by then): an error saying so.
        for k in [None, Some(&b)] {
            assert_eq!(
                verdict(Some(&a), k, None, true),
                Verdict::NotInstalled(LOST.to_string())
            );
        }
    }
}
