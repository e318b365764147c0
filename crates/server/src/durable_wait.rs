//! Where replies wait for their log position to become durable.
//!
//! Waiters are kept by the position they need, and a publication wakes only those it
//! satisfies. Under `--fsync always` group commits overlap: one group is fsynced while the
//! next gathers, so a wake-everyone channel (a `watch`) woke the next group's waiters at each
//! fsync for nothing, each wake a task scheduled from the log writer's thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

#[derive(Debug, Default)]
pub struct DurableWaiters {
    durable: AtomicU64,
    /// Publications so far, for waiters of "the next publication".
    publications: AtomicU64,
    /// Wakers and the position each waits for (0: any publication). A list, not a map: it
    /// holds at most one entry per waiting connection, and an insertion then allocates
    /// nothing once the list has grown to the number of clients.
    waiting: Mutex<Vec<(u64, Waker)>>,
}

impl DurableWaiters {
    /// `seq` is durable: wake those waiting for it or less, and those waiting for any
    /// publication.
    pub fn publish(&self, seq: u64) {
        let durable = self.durable.fetch_max(seq, Ordering::AcqRel).max(seq);
        self.publications.fetch_add(1, Ordering::AcqRel);
        let satisfied: Vec<Waker> =
            self.waiting.lock().extract_if(.., |(wants, _)| *wants <= durable).map(|(_, waker)| waker).collect();
        for waker in satisfied {
            waker.wake();
        }
    }

    /// Resolves once `seq` is durable.
    pub fn until(&self, seq: u64) -> Wait<'_> {
        Wait { waiters: self, seq, after: None, registered: false }
    }

    /// Resolves at the next publication (or once `seq` is durable, if sooner).
    pub fn next_publication(&self, seq: u64) -> Wait<'_> {
        Wait { waiters: self, seq, after: Some(self.publications.load(Ordering::Acquire)), registered: false }
    }
}

/// The future of [`DurableWaiters::until`] and [`DurableWaiters::next_publication`].
pub struct Wait<'a> {
    waiters: &'a DurableWaiters,
    seq: u64,
    /// Publication count at creation, for `next_publication`.
    after: Option<u64>,
    /// Polled before: its waker may already be in the list.
    registered: bool,
}

impl Wait<'_> {
    fn done(&self) -> bool {
        let w = self.waiters;
        w.durable.load(Ordering::Acquire) >= self.seq
            || self.after.is_some_and(|n| w.publications.load(Ordering::Acquire) != n)
    }
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done() {
            return Poll::Ready(());
        }
        let mut waiting = this.waiters.waiting.lock();
        // Checked again under the lock: `publish` updates the counters before taking it.
        if this.done() {
            return Poll::Ready(());
        }
        let key = if this.after.is_some() { 0 } else { this.seq };
        // Polled again before a publication (a spurious wake-up): keep one entry, not one per
        // poll. The first poll, the common case, does not look.
        let listed = this.registered && waiting.iter().any(|(k, w)| *k == key && w.will_wake(cx.waker()));
        if !listed {
            waiting.push((key, cx.waker().clone()));
        }
        this.registered = true;
        Poll::Pending
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_publication_wakes_only_the_waiters_it_satisfies() {
        let waiters = Arc::new(DurableWaiters::default());
        let (w5, w9) = (Arc::clone(&waiters), Arc::clone(&waiters));
        let five = tokio::spawn(async move { w5.until(5).await });
        let nine = tokio::spawn(async move { w9.until(9).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiters.publish(6);
        tokio::time::timeout(Duration::from_secs(5), five).await.unwrap().unwrap();
        assert_eq!(waiters.waiting.lock().iter().map(|(wants, _)| *wants).collect::<Vec<_>>(), vec![9]);
        assert!(!nine.is_finished());
        waiters.publish(9);
        tokio::time::timeout(Duration::from_secs(5), nine).await.unwrap().unwrap();
        assert!(waiters.waiting.lock().is_empty());
    }

    #[test]
    fn polling_again_before_a_publication_keeps_one_entry() {
        let waiters = DurableWaiters::default();
        let mut wait = waiters.until(3);
        struct Task;
        impl std::task::Wake for Task {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Task));
        let mut cx = Context::from_waker(&waker);
        for _ in 0..3 {
            assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
        }
        assert_eq!(waiters.waiting.lock().len(), 1);
        waiters.publish(3);
        assert!(waiters.waiting.lock().is_empty());
        assert!(Pin::new(&mut wait).poll(&mut cx).is_ready());
    }

    #[tokio::test]
    async fn next_publication_resolves_on_any_publication() {
        let waiters = Arc::new(DurableWaiters::default());
        let w = Arc::clone(&waiters);
        let any = tokio::spawn(async move { w.next_publication(100).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!any.is_finished());
        waiters.publish(1);
        tokio::time::timeout(Duration::from_secs(5), any).await.unwrap().unwrap();
        // Already durable: ready at once.
        waiters.until(1).await;
    }
}
