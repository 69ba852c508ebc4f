//! Messages between the speaker's tasks (all over bounded channels).
//!
//! Session tasks → RIB task: [`RibMsg`]. RIB task → one established session:
//! [`PeerOut`]. API / listener → session task: [`PeerCmd`].
//!
//! UPDATEs a session has read but the RIB task has not applied yet are
//! bounded by prefixes, not by messages: each batch carries a [`Credit`]
//! from its session's [`InFlight`] pool, returned when the RIB task is done
//! with it. A channel of 1024 packed UPDATEs (500 prefixes each) would
//! otherwise hold 25 MB of decoded prefixes while a large table loads; an
//! UPDATE counts at least [`MIN_WEIGHT`] prefixes, so one-prefix UPDATEs
//! (each with its own attribute set) stay bounded too.
//!
//! The batch vectors themselves go back and forth: the RIB task returns one
//! with its credit ([`Credit::recycle`]), the applied UPDATEs still in it,
//! and the session empties it for its next batch ([`InFlight::batch`]), so
//! no batch allocates and each decoded UPDATE is freed by the thread that
//! allocated it, not by the RIB task.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::BgpError;
use crate::fsm::Negotiated;
use crate::speaker::{PeerConfig, RouteInfo, SpeakerEvent};
use crate::types::{AddressFamily, Prefix};
use crate::wire::{Notification, Update};

pub(crate) enum RibMsg {
    /// The owner's express channel ([`crate::Speaker::express_events`]).
    /// With the owner's count of ordered events ([`crate::ExpressEvents::ordered`]).
    ExpressEvents(
        mpsc::Sender<SpeakerEvent>,
        std::sync::Arc<std::sync::atomic::AtomicU64>,
    ),
    /// A session reached Established; `out` carries its outbound UPDATEs.
    PeerUp {
        peer: IpAddr,
        negotiated: Negotiated,
        local_addr: IpAddr,
        out: mpsc::Sender<PeerOut>,
    },
    /// An established session ended. `retain_for`: the peer is restarting
    /// gracefully (RFC 4724 §4.2): keep its routes as stale this long.
    /// `families`: those the peer's GR capability covers; others are flushed.
    PeerDown {
        peer: IpAddr,
        retain_for: Option<Duration>,
        families: Vec<AddressFamily>,
    },
    /// UPDATEs in the order read: what one read decoded goes as a few
    /// batches ([`BATCH_UPDATES`], [`BATCH_PREFIXES`]), not one message each.
    Updates {
        peer: IpAddr,
        updates: Vec<Update>,
        /// Returned (dropped) once the RIB task has applied `updates`.
        credit: Credit,
    },
    RouteRefresh {
        peer: IpAddr,
        family: AddressFamily,
    },
    /// Forward to the owner's event stream (keeps ordering with route events).
    Event(SpeakerEvent),
    Originate {
        prefix: Prefix,
        attributes: Box<crate::types::PathAttributes>,
        reply: oneshot::Sender<Result<(), BgpError>>,
    },
    Withdraw {
        prefix: Prefix,
        reply: oneshot::Sender<Result<(), BgpError>>,
    },
    Routes {
        query: crate::speaker::RouteQuery,
        reply: oneshot::Sender<Vec<RouteInfo>>,
    },
    /// The Loc-RIB prefixes containing an address, with their best path's
    /// peer (`None`: originated here); longest first.
    Covering {
        addr: IpAddr,
        reply: oneshot::Sender<Vec<(crate::Prefix, Option<IpAddr>)>>,
    },
    /// The RIB's counters of each peer it knows.
    Counts {
        reply: oneshot::Sender<HashMap<IpAddr, crate::rib::PeerCounters>>,
    },
    /// `ebgp_requires_policy` changed (SIGHUP).
    SetEbgpRequiresPolicy {
        on: bool,
    },
    /// The configured peer set changed (ASN, RR client, max-prefix,
    /// filters). Replies with the up peers whose import filter changed.
    SetPeers {
        peers: Vec<PeerConfig>,
        import_changed: oneshot::Sender<Vec<IpAddr>>,
    },
}

pub(crate) enum PeerOut {
    /// UPDATEs to send, in order (End-of-RIB markers included).
    Updates(Vec<Update>),
    /// The peer exceeded its prefix limit (RFC 4486 Cease/1).
    MaxPrefixes { family: AddressFamily, limit: u32 },
}

pub(crate) enum PeerCmd {
    /// The listener accepted a connection from this peer's address.
    Accepted(TcpStream),
    /// Send ROUTE-REFRESH for every negotiated family.
    RouteRefresh {
        reply: oneshot::Sender<Result<(), BgpError>>,
    },
    /// The peer's BFD session went from Up to Down (diagnostic).
    BfdDown(crate::bfd::Diagnostic),
    /// Stop the session and end the task. `None`: close without NOTIFICATION.
    /// `keep_if_graceful`: also without it when the session negotiated
    /// graceful restart (RFC 4724: the peer keeps our routes meanwhile).
    Stop {
        notification: Option<Notification>,
        keep_if_graceful: bool,
        reply: oneshot::Sender<()>,
    },
}

/// A session stops reading its socket while this many prefixes of its
/// UPDATEs wait for the RIB task (~32 ms of RIB work; 3 MB of prefixes).
pub(crate) const MAX_IN_FLIGHT: usize = 65_536;

/// Prefixes an UPDATE counts for at least: at most 2048 one-prefix UPDATEs
/// (~0.6 MB decoded, attribute sets included) wait for the RIB task.
const MIN_WEIGHT: usize = 32;

/// Most UPDATEs and prefixes in one [`RibMsg::Updates`]: one-prefix UPDATEs
/// (a peer with an attribute set per route) cross to the RIB task 64 at a
/// time instead of one channel message, credit and wake-up each; a batch
/// stays a few tens of µs of RIB work, so API calls and timers queued behind
/// it keep their turn.
pub(crate) const BATCH_UPDATES: usize = 64;
pub(crate) const BATCH_PREFIXES: usize = 4096;

/// Emptied batch vectors a session keeps for its next batches: enough for
/// the batches one read decodes ahead of the RIB task (at most
/// [`MAX_IN_FLIGHT`] / [`MIN_WEIGHT`] / [`BATCH_UPDATES`] = 32 in flight).
const SPARE_BATCHES: usize = 32;

/// Prefixes of one session's UPDATEs read but not yet applied by the RIB.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    prefixes: AtomicUsize,
    drained: Notify,
    /// Batch vectors (capacity [`BATCH_UPDATES`]) back from the RIB task,
    /// still holding the UPDATEs it applied (at most [`SPARE_BATCHES`] ×
    /// [`BATCH_UPDATES`] of them, until the session reuses the vector).
    /// A fresh vector per batch cost a 5.6 KB allocation and four regrowths,
    /// and each of those large requests made glibc consolidate the small
    /// blocks the RIB task had just freed (the decoded UPDATEs), sending the
    /// session's next small allocations down malloc's slow path: 8 % of the
    /// agent's CPU in a 1M one-prefix-per-UPDATE load (lab/bench/README.md).
    /// Freed by the RIB task, every one-prefix UPDATE's attribute set, AS_PATH
    /// and prefix vector crossed threads (into the RIB thread's malloc cache,
    /// then back to the session's arena under its lock); freed here they
    /// refill the session's own cache for the UPDATEs it decodes next.
    spare: Mutex<Vec<Vec<Update>>>,
}

impl InFlight {
    /// At or over [`MAX_IN_FLIGHT`]: stop reading until [`Self::drained`].
    pub(crate) fn full(&self) -> bool {
        self.prefixes.load(Ordering::Acquire) >= MAX_IN_FLIGHT
    }

    /// Counts `update`'s prefixes ([`weight`]) until the returned credit is
    /// dropped.
    pub(crate) fn take(self: &Arc<Self>, update: &Update) -> Credit {
        let n = weight(update);
        self.prefixes.fetch_add(n, Ordering::AcqRel);
        Credit {
            pool: self.clone(),
            n,
        }
    }

    /// An empty vector for a new batch of UPDATEs: one the RIB task handed
    /// back if there is one (its applied UPDATEs freed here, on the
    /// session's thread), else a new one with room for a whole batch.
    pub(crate) fn batch(&self) -> Vec<Update> {
        let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
        match spare {
            Some(mut v) => {
                v.clear();
                v
            }
            None => Vec::with_capacity(BATCH_UPDATES),
        }
    }

    /// Resolves after the count went back under [`MAX_IN_FLIGHT`] (at once
    /// if it did since the last call).
    pub(crate) async fn drained(&self) {
        self.drained.notified().await
    }
}

/// Prefixes an UPDATE counts for (at least [`MIN_WEIGHT`]: End-of-RIB,
/// attributes only, one-prefix UPDATEs).
fn weight(update: &Update) -> usize {
    (update.announced.len() + update.withdrawn.len()).max(MIN_WEIGHT)
}

impl Credit {
    /// Prefixes this credit holds.
    pub(crate) fn prefixes(&self) -> usize {
        self.n
    }

    /// Returns the credit with its batch's vector, and the applied UPDATEs
    /// in it, for the session's next batch ([`InFlight::batch`] empties it).
    /// When this was the session's last batch in flight (the RIB task has
    /// caught up: the load is over or waits on the peer), the applied
    /// UPDATEs of every spare vector are freed here instead, so none are
    /// kept after a load.
    pub(crate) fn recycle(self, mut batch: Vec<Update>) {
        let last = self.pool.prefixes.load(Ordering::Acquire) == self.n;
        let Ok(mut spare) = self.pool.spare.lock() else {
            return;
        };
        if last {
            batch.clear();
            spare.iter_mut().for_each(Vec::clear);
        }
        if batch.capacity() >= BATCH_UPDATES && spare.len() < SPARE_BATCHES {
            spare.push(batch);
        }
    }

    /// Adds `update`'s prefixes to this credit (an UPDATE joining a batch).
    pub(crate) fn add(&mut self, update: &Update) {
        let n = weight(update);
        self.pool.prefixes.fetch_add(n, Ordering::AcqRel);
        self.n += n;
    }
}

/// Prefixes counted in an [`InFlight`] pool while a message travels.
#[derive(Debug)]
pub(crate) struct Credit {
    pool: Arc<InFlight>,
    n: usize,
}

impl Drop for Credit {
    fn drop(&mut self) {
        let before = self.pool.prefixes.fetch_sub(self.n, Ordering::AcqRel);
        if before >= MAX_IN_FLIGHT && before.saturating_sub(self.n) < MAX_IN_FLIGHT {
            // One waiter (the session task); remembered if it is not waiting yet.
            self.pool.drained.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Prefix;

    fn update(n: usize) -> Update {
        let p: Prefix = "10.0.0.0/24".parse().unwrap();
        Update {
            withdrawn: vec![p; n].into(),
            ..Update::default()
        }
    }

    #[tokio::test]
    async fn credits_bound_prefixes_and_wake_the_reader() {
        let pool = Arc::new(InFlight::default());
        let eor = pool.take(&update(0));
        assert_eq!(
            pool.prefixes.load(Ordering::Relaxed),
            MIN_WEIGHT,
            "counts at least MIN_WEIGHT"
        );
        let big = pool.take(&update(MAX_IN_FLIGHT));
        assert!(pool.full());
        drop(eor);
        assert!(pool.full(), "still {MAX_IN_FLIGHT} in flight");
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.drained().await })
        };
        tokio::task::yield_now().await;
        drop(big);
        assert!(!pool.full());
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the reader is woken")
            .unwrap();
        assert_eq!(pool.prefixes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn batch_vectors_come_back_with_their_updates_and_are_emptied_for_the_next_batch() {
        let pool = Arc::new(InFlight::default());
        let mut v = pool.batch();
        assert!(v.capacity() >= BATCH_UPDATES, "room for a whole batch");
        v.push(update(1));
        let (ptr, credit) = (v.as_ptr(), pool.take(&update(1)));
        let behind = pool.take(&update(1));
        credit.recycle(v);
        assert_eq!(
            pool.prefixes.load(Ordering::Relaxed),
            MIN_WEIGHT,
            "credit returned"
        );
        assert_eq!(
            pool.spare.lock().unwrap()[0].len(),
            1,
            "with a batch still in flight, the applied UPDATE waits to be freed by the session"
        );
        behind.recycle(Vec::with_capacity(BATCH_UPDATES));
        assert!(
            pool.spare.lock().unwrap().iter().all(Vec::is_empty),
            "the last batch in flight frees what the spare vectors held"
        );
        pool.spare.lock().unwrap().truncate(1);
        let again = pool.batch();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr, "the same allocation, reused");
        // At most SPARE_BATCHES are kept; small vectors are not.
        for _ in 0..SPARE_BATCHES + 4 {
            pool.take(&update(0))
                .recycle(Vec::with_capacity(BATCH_UPDATES));
        }
        pool.take(&update(0)).recycle(Vec::new());
        assert_eq!(pool.spare.lock().unwrap().len(), SPARE_BATCHES);
    }

    #[test]
    fn a_batch_credit_holds_every_update_until_dropped() {
        let pool = Arc::new(InFlight::default());
        let mut c = pool.take(&update(3));
        c.add(&update(0));
        c.add(&update(MAX_IN_FLIGHT));
        assert_eq!(c.prefixes(), 2 * MIN_WEIGHT + MAX_IN_FLIGHT);
        assert!(pool.full());
        drop(c);
        assert_eq!(pool.prefixes.load(Ordering::Relaxed), 0);
        // One-prefix UPDATEs are bounded by count too.
        let small: Vec<Credit> = (0..MAX_IN_FLIGHT / MIN_WEIGHT - 1)
            .map(|_| pool.take(&update(1)))
            .collect();
        assert!(!pool.full());
        let last = pool.take(&update(1));
        assert!(pool.full());
        drop((small, last));
        assert_eq!(pool.prefixes.load(Ordering::Relaxed), 0);
    }
}
