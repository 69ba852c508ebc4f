//! The command queue between [`crate::RouteTable`] handles and the
//! reconciler task: a bounded multi-producer, single-consumer queue that the
//! consumer empties in one swap.
//!
//! Why not `tokio::sync::mpsc`: a bulk load sends one command per route, and
//! mpsc costs a semaphore acquire on send and a permit release (which takes
//! the semaphore's mutex) on every receive — about a third of RouteTable's
//! own CPU in a 1M-route load. Here a send is one uncontended lock and a
//! push; the consumer takes everything queued under one lock. A send wakes
//! the consumer only when it finds the queue empty (the consumer then has
//! taken all earlier commands, or is about to be woken for them); a full
//! queue (`CAPACITY`) makes senders wait until the consumer has emptied it.
//!
//! Express commands ([`Sender::send_express`], [`crate::RouteTable::express`])
//! wait in a second list beside the bulk one: never bounded (their producer
//! bounds them, see the method), always waking the consumer, and taken
//! first — with the bulk in the same lock ([`Receiver::take`]), and alone
//! at each boundary of a burst the consumer works through
//! ([`Receiver::take_express`]) — so they overtake a full queue.
//!
//! Closing: when the last [`Sender`] goes, the consumer sees `closed` after
//! taking what is left; when the [`Receiver`] goes (the task stopped), queued
//! commands are dropped (their reply channels fail, so callers see
//! `TableStopped`) and later sends are refused.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::table::Command;

/// Commands queued before senders wait. With the reconciler's burst taken
/// from here, up to twice this many route changes are committed to their
/// order before the kernel sees them; 2048 (≈ 10 ms of kernel writes)
/// keeps the reconciler fed while leaving a bulk load's backlog to the
/// speaker's outbox, which orders it for the kernel (docs/design.md §2).
pub(crate) const CAPACITY: usize = 2048;
/// Buffer capacity kept when idle (see [`Receiver::shrink`]).
pub(crate) const SMALL: usize = 256;

struct State {
    cmds: Vec<Command>,
    /// Express commands: taken before `cmds` (see the module doc).
    express: Vec<Command>,
    senders: usize,
    receiver_gone: bool,
    /// A sender waits for room (found the queue full).
    full: bool,
    /// A quiet send ([`Sender::send_quiet`]) found the queue empty and
    /// did not wake the consumer: the next send does.
    quiet: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the consumer (one permit is stored if it is not waiting).
    ready: Notify,
    /// Wakes senders waiting for room.
    room: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held across a panic point that leaves State
        // inconsistent (pushes and swaps only): a poisoned lock is usable.
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The producing side; cloned per [`crate::RouteTable`] handle.
pub(crate) struct Sender {
    shared: Arc<Shared>,
}

/// The consuming side, owned by the reconciler task.
pub(crate) struct Receiver {
    shared: Arc<Shared>,
}

/// A new queue.
pub(crate) fn queue() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            cmds: Vec::new(),
            express: Vec::new(),
            senders: 1,
            receiver_gone: false,
            full: false,
            quiet: false,
        }),
        ready: Notify::new(),
        room: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl Sender {
    /// Queue `cmd`, waiting while the queue is full. Gives the command back
    /// if the reconciler task has stopped.
    pub(crate) async fn send(&self, cmd: Command) -> Result<(), Command> {
        self.send_with(cmd, true).await
    }

    /// [`send`](Self::send) without waking the consumer: it takes the
    /// command at its next wake-up for anything else (a notification, a
    /// timer, the next command sent, which does wake it), in order with
    /// the others. For a command whose effect nothing waits for before
    /// the consumer has other work anyway (an attach's
    /// [`Command::Expect`]: the attach's own link notifications wake it),
    /// so that the sender does not pay for a wake-up on its path.
    pub(crate) async fn send_quiet(&self, cmd: Command) -> Result<(), Command> {
        self.send_with(cmd, false).await
    }

    async fn send_with(&self, cmd: Command, wake: bool) -> Result<(), Command> {
        loop {
            let room = {
                let mut st = self.shared.lock();
                if st.receiver_gone {
                    return Err(cmd);
                }
                if st.cmds.len() < CAPACITY {
                    let was_empty = st.cmds.is_empty();
                    st.cmds.push(cmd);
                    let notify = if wake {
                        was_empty || std::mem::take(&mut st.quiet)
                    } else {
                        st.quiet |= was_empty;
                        false
                    };
                    drop(st);
                    if notify {
                        self.shared.ready.notify_one();
                    }
                    return Ok(());
                }
                st.full = true;
                // Created under the lock: the consumer's notify_waiters
                // (after it takes the lock) reaches this future.
                self.shared.room.notified()
            };
            room.await;
        }
    }
}

impl Sender {
    /// Queue every command of `cmds` in order, as many per lock as fit,
    /// waiting for room whenever the queue is full. `Err` if the reconciler
    /// task has stopped (the rest are dropped).
    pub(crate) async fn send_all(&self, cmds: impl IntoIterator<Item = Command>) -> Result<(), ()> {
        let mut cmds = cmds.into_iter().peekable();
        loop {
            let room = {
                let mut st = self.shared.lock();
                if st.receiver_gone {
                    return Err(());
                }
                let was_empty = st.cmds.is_empty();
                let free = CAPACITY.saturating_sub(st.cmds.len());
                st.cmds.extend(cmds.by_ref().take(free));
                let wake = (was_empty || st.quiet) && !st.cmds.is_empty();
                if wake {
                    st.quiet = false;
                }
                let done = cmds.peek().is_none();
                let room = (!done).then(|| {
                    st.full = true;
                    self.shared.room.notified()
                });
                drop(st);
                if wake {
                    self.shared.ready.notify_one();
                }
                match room {
                    None => return Ok(()),
                    Some(r) => r,
                }
            };
            room.await;
        }
    }
}

impl Sender {
    /// Queue `cmds` as express commands: at once (never waiting for room),
    /// waking the consumer, which takes them before any bulk command still
    /// queued. Unbounded: for a producer that bounds them itself (a few
    /// changes per burst it sends in order). `Err` if the reconciler task
    /// has stopped.
    pub(crate) fn send_express(&self, cmds: impl IntoIterator<Item = Command>) -> Result<(), ()> {
        {
            let mut st = self.shared.lock();
            if st.receiver_gone {
                return Err(());
            }
            let before = st.express.len();
            st.express.extend(cmds);
            if st.express.len() == before {
                return Ok(());
            }
            st.quiet = false;
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let last = {
            let mut st = self.shared.lock();
            st.senders -= 1;
            st.senders == 0
        };
        if last {
            self.shared.ready.notify_one();
        }
    }
}

impl Receiver {
    /// Move every queued command to the end of `out`, and every express
    /// command to the end of `express` (under the same lock: an express
    /// command sent before a bulk one is never taken after it). Returns
    /// false once every sender is gone (after taking what they left).
    pub(crate) fn take(&self, out: &mut Vec<Command>, express: &mut Vec<Command>) -> bool {
        let (open, wake) = {
            let mut st = self.shared.lock();
            if !st.express.is_empty() {
                express.append(&mut st.express);
            }
            if out.is_empty() {
                // Swap buffers: no copy, and both keep their capacity.
                std::mem::swap(&mut st.cmds, out);
            } else {
                out.append(&mut st.cmds);
            }
            let wake = std::mem::take(&mut st.full);
            st.quiet = false;
            (st.senders > 0, wake)
        };
        if wake {
            self.shared.room.notify_waiters();
        }
        open
    }

    /// Move the express commands queued to the end of `express` (between
    /// two steps of a burst already taken). One uncontended lock.
    pub(crate) fn take_express(&self, express: &mut Vec<Command>) {
        let mut st = self.shared.lock();
        if !st.express.is_empty() {
            express.append(&mut st.express);
        }
    }

    /// Give back the memory a burst grew the queue to (call when idle).
    pub(crate) fn shrink(&self) {
        let mut st = self.shared.lock();
        if st.cmds.is_empty() && st.cmds.capacity() > SMALL {
            st.cmds = Vec::new();
        }
    }

    /// Wait until a command is queued or the last sender is gone (may
    /// return early; callers then [`take`](Self::take) and find nothing).
    /// Cancel-safe.
    pub(crate) async fn wait(&self) {
        let ready = self.shared.ready.notified();
        {
            let st = self.shared.lock();
            if !st.cmds.is_empty() || !st.express.is_empty() || st.senders == 0 {
                return;
            }
        }
        ready.await;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let dropped = {
            let mut st = self.shared.lock();
            st.receiver_gone = true;
            (
                std::mem::take(&mut st.cmds),
                std::mem::take(&mut st.express),
            )
        };
        // Outside the lock: dropping replies wakes their waiters.
        drop(dropped);
        self.shared.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnetwork::IpNetwork;
    use std::time::Duration;

    fn rm(i: u32) -> Command {
        let p = IpNetwork::new(std::net::Ipv4Addr::from(i).into(), 32).unwrap();
        Command::Change(p, None, crate::table::UNORDERED)
    }

    fn key(c: &Command) -> u32 {
        match c {
            Command::Change(IpNetwork::V4(p), None, _) => u32::from(p.ip()),
            _ => u32::MAX,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn order_backpressure_and_close() {
        let (tx, rx) = queue();
        let tx2 = tx.clone();
        let n = 3 * CAPACITY as u32 + 17;
        let producer = tokio::spawn(async move {
            for i in 0..n {
                assert!(tx2.send(rm(i)).await.is_ok());
            }
        });
        let mut got = Vec::new();
        let mut buf = Vec::new();
        let mut max_seen = 0;
        loop {
            rx.wait().await;
            let open = rx.take(&mut buf, &mut Vec::new());
            max_seen = max_seen.max(buf.len());
            got.extend(buf.drain(..).map(|c| key(&c)));
            if got.len() == n as usize {
                break;
            }
            assert!(open);
        }
        producer.await.unwrap();
        assert_eq!(got, (0..n).collect::<Vec<_>>(), "commands in order");
        assert!(max_seen <= CAPACITY, "queue bounded: {max_seen}");
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), rx.wait())
            .await
            .expect("last sender gone wakes the consumer");
        assert!(!rx.take(&mut buf, &mut Vec::new()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_goes_in_order_a_queue_at_a_time() {
        let (tx, rx) = queue();
        let n = 2 * CAPACITY as u32 + 5;
        let producer = tokio::spawn(async move {
            assert!(tx.send_all((0..n).map(rm)).await.is_ok());
            // After the burst: one more, still in order.
            assert!(tx.send(rm(n)).await.is_ok());
        });
        let mut got = Vec::new();
        let mut buf = Vec::new();
        while got.len() <= n as usize {
            rx.wait().await;
            rx.take(&mut buf, &mut Vec::new());
            assert!(buf.len() <= CAPACITY, "bounded: {}", buf.len());
            got.extend(buf.drain(..).map(|c| key(&c)));
        }
        producer.await.unwrap();
        assert_eq!(got, (0..=n).collect::<Vec<_>>());
        drop(rx);
        let (tx, rx) = queue();
        drop(rx);
        assert!(tx.send_all([rm(1)]).await.is_err(), "stopped consumer");
    }

    #[tokio::test]
    async fn a_stopped_consumer_fails_senders_and_drops_replies() {
        let (tx, rx) = queue();
        let (reply, answer) = tokio::sync::oneshot::channel();
        assert!(tx.send(Command::Converged(reply)).await.is_ok());
        drop(rx);
        assert!(answer.await.is_err(), "queued reply dropped");
        assert!(tx.send(rm(1)).await.is_err());
    }

    #[tokio::test]
    async fn a_full_queue_waits_until_taken() {
        let (tx, rx) = queue();
        for i in 0..CAPACITY as u32 {
            assert!(tx.send(rm(i)).await.is_ok());
        }
        let tx2 = tx.clone();
        let blocked = tokio::spawn(async move { tx2.send(rm(99_999)).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!blocked.is_finished(), "sender waits while full");
        let mut buf = Vec::new();
        assert!(rx.take(&mut buf, &mut Vec::new()));
        assert_eq!(buf.len(), CAPACITY);
        assert!(blocked.await.unwrap());
        buf.clear();
        rx.take(&mut buf, &mut Vec::new());
        assert_eq!(buf.iter().map(key).collect::<Vec<_>>(), [99_999]);
    }

    /// A quiet send leaves a waiting consumer asleep; the next send wakes
    /// it although the queue is not empty, and it takes both, in order.
    #[tokio::test]
    async fn a_quiet_send_does_not_wake_and_the_next_send_does() {
        let (tx, rx) = queue();
        let rx = std::sync::Arc::new(rx);
        let r = rx.clone();
        let consumer = tokio::spawn(async move {
            r.wait().await;
            let mut buf = Vec::new();
            r.take(&mut buf, &mut Vec::new());
            buf.iter().map(key).collect::<Vec<_>>()
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(tx.send_quiet(rm(1)).await.is_ok());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!consumer.is_finished(), "woken by a quiet send");
        assert!(tx.send(rm(2)).await.is_ok());
        let taken = tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .expect("the send after a quiet one wakes the consumer");
        assert_eq!(taken.unwrap(), [1, 2]);
    }

    /// Express commands are queued into a full queue without waiting, wake
    /// the consumer, and are taken apart from (and with) the bulk.
    #[tokio::test]
    async fn express_commands_skip_a_full_queue() {
        let (tx, rx) = queue();
        for i in 0..CAPACITY as u32 {
            assert!(tx.send(rm(i)).await.is_ok());
        }
        let mut bulk = Vec::new();
        let mut express = Vec::new();
        rx.take_express(&mut express);
        assert!(express.is_empty());
        assert!(tx.send_express([rm(99_999)]).is_ok(), "never waits");
        tokio::time::timeout(Duration::from_secs(5), rx.wait())
            .await
            .expect("an express command wakes the consumer");
        assert!(rx.take(&mut bulk, &mut express));
        assert_eq!(express.iter().map(key).collect::<Vec<_>>(), [99_999]);
        assert_eq!(bulk.len(), CAPACITY);
        assert!(tx.send_express([rm(7)]).is_ok());
        express.clear();
        rx.take_express(&mut express);
        assert_eq!(express.iter().map(key).collect::<Vec<_>>(), [7]);
        drop(rx);
        assert!(tx.send_express([rm(8)]).is_err(), "stopped consumer");
    }
}
