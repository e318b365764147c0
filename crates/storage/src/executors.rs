//! Whether the threads that execute commands have run out of work, for the log writer's
//! group commit under `always` (see [`crate::LogOptions::executors`]).
//!
//! Redis fsyncs its AOF in `beforeSleep`, once its event loop has served every client that
//! was ready, so one fsync covers every write those clients sent. StayKV's log writer is a
//! thread of its own: woken from idle by the first write, it synced that write alone while the
//! executors were still running requests that had already arrived, and the writes among them
//! waited for the next fsync. Told when every executor thread has parked, the writer syncs
//! then instead, or after a bounded wait.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// The executor threads of one runtime, as the runtime reports them parking and waking.
#[derive(Debug)]
pub struct Executors {
    threads: usize,
    /// Threads inside their runtime's park (between [`Executors::parking`] and
    /// [`Executors::unparked`], which the runtime calls in pairs).
    parked: AtomicUsize,
    /// A writer waits in [`Executors::wait_idle`]: the thread that parks last wakes it.
    waiting: AtomicBool,
    lock: Mutex<()>,
    idle: Condvar,
}

impl Executors {
    /// Executors of a runtime with `threads` worker threads.
    pub fn new(threads: usize) -> Executors {
        Executors {
            threads,
            parked: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            lock: Mutex::new(()),
            idle: Condvar::new(),
        }
    }

    /// Called by an executor thread about to park for want of work.
    pub fn parking(&self) {
        let parked = self.parked.fetch_add(1, Ordering::SeqCst) + 1;
        // SeqCst on both sides: either this thread sees `waiting`, or the waiter sees the new
        // count before it sleeps (and the notify takes the lock the waiter holds until then).
        if parked >= self.threads && self.waiting.load(Ordering::SeqCst) {
            let _guard = self.lock.lock();
            self.idle.notify_all();
        }
    }

    /// Called by an executor thread leaving its park.
    pub fn unparked(&self) {
        // Saturating: the runtime calls the two in pairs, but a stray call must not wrap.
        let _ = self.parked.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Whether every executor thread is parked. A thread that `block_in_place` handed its
    /// runtime's core on counts as parked once the core's new thread parks: the writer then
    /// syncs without waiting, as it would without executors.
    pub fn all_idle(&self) -> bool {
        self.parked.load(Ordering::SeqCst) >= self.threads
    }

    /// Waits until every executor thread has parked, for at most `limit`.
    pub fn wait_idle(&self, limit: Duration) {
        if self.all_idle() {
            return;
        }
        let deadline = Instant::now() + limit;
        let mut guard = self.lock.lock();
        self.waiting.store(true, Ordering::SeqCst);
        while !self.all_idle() {
            if self.idle.wait_until(&mut guard, deadline).timed_out() {
                break;
            }
        }
        self.waiting.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn no_threads_is_idle() {
        let executors = Executors::new(0);
        let started = Instant::now();
        executors.wait_idle(Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn idle_once_every_thread_has_parked() {
        let executors = Executors::new(2);
        assert!(!executors.all_idle());
        executors.parking();
        assert!(!executors.all_idle());
        executors.parking();
        assert!(executors.all_idle());
        executors.unparked();
        assert!(!executors.all_idle());
    }

    #[test]
    fn unparked_before_parking_does_not_wrap() {
        let executors = Executors::new(1);
        executors.unparked();
        assert!(!executors.all_idle());
        executors.parking();
        assert!(executors.all_idle());
    }

    #[test]
    fn the_last_thread_to_park_wakes_the_waiter() {
        let executors = Arc::new(Executors::new(2));
        executors.parking();
        let last = Arc::clone(&executors);
        let parker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            last.parking();
        });
        let started = Instant::now();
        executors.wait_idle(Duration::from_secs(30));
        let waited = started.elapsed();
        parker.join().unwrap();
        assert!(executors.all_idle());
        assert!(waited >= Duration::from_millis(40), "returned before the last park: {waited:?}");
        assert!(waited < Duration::from_secs(10), "not woken by the last park: {waited:?}");
    }

    #[test]
    fn busy_threads_hold_the_waiter_for_at_most_the_limit() {
        let executors = Executors::new(1);
        let started = Instant::now();
        executors.wait_idle(Duration::from_millis(30));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        assert!(waited < Duration::from_secs(10), "{waited:?}");
    }
}
