//! Memory accounting for `maxmemory`: the process's allocator, counted.
//!
//! Redis compares `maxmemory` with what its allocator has handed out (`used_memory`), not with
//! RSS: freed memory often stays resident, so an RSS-based check would keep evicting after
//! the data is gone. StayKV does the same by wrapping its allocator, mimalloc (chosen over
//! glibc's malloc because small keys and values then cost no per-allocation header: 154 against
//! 218 bytes of RSS per small key, measured when keys and values were separate allocations).
//! Counting on every allocation must not become a shared hot spot, so each thread keeps a
//! local balance and folds it into the global counter only once it passes [`FOLD_BYTES`]; the
//! global figure is then exact to within that much per thread, a few MiB at most.
//!
//! The snapshot thread's allocations count in `used_memory` but not against `maxmemory`
//! ([`NotCountedForEviction`]): it is StayKV's counterpart of Redis's rewrite child, whose
//! memory is another process's, and counting its passing buffers made every compaction
//! evict tens of megabytes of sessions that were gone again a second later.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mimalloc::MiMalloc;
use staykv_engine::lazyfree::Garbage;

/// Per-thread balance folded into the global count past this many bytes either way.
const FOLD_BYTES: i64 = 64 << 10;

static ALLOCATED: AtomicI64 = AtomicI64::new(0);
static LIMIT: AtomicU64 = AtomicU64::new(0);
/// What threads inside [`NotCountedForEviction`] hold now (exact: no folding).
static NOT_COUNTED: AtomicI64 = AtomicI64::new(0);

/// A thread's own figures, in one thread-local so that counting an allocation reads one.
#[derive(Clone, Copy)]
struct Local {
    /// Not yet folded into [`ALLOCATED`].
    unfolded: i64,
    /// While inside [`NotCountedForEviction`], what this thread added to [`NOT_COUNTED`].
    not_counted: Option<i64>,
}

thread_local! {
    // `const` and drop-free: initialising it never allocates, which an allocator requires.
    static LOCAL: Cell<Local> = const { Cell::new(Local { unfolded: 0, not_counted: None }) };
}

fn count(delta: i64) {
    let folded = LOCAL.try_with(|cell| {
        let mut local = cell.get();
        if let Some(net) = &mut local.not_counted {
            *net += delta;
            NOT_COUNTED.fetch_add(delta, Ordering::Relaxed);
        }
        let (balance, folded) = fold(local.unfolded, delta);
        local.unfolded = balance;
        cell.set(local);
        folded
    });
    // A thread being torn down has no local balance left: count directly.
    let folded = folded.unwrap_or(delta);
    if folded != 0 {
        ALLOCATED.fetch_add(folded, Ordering::Relaxed);
    }
}

/// A thread's new balance after `delta`, and what to add to the global count.
fn fold(balance: i64, delta: i64) -> (i64, i64) {
    let balance = balance + delta;
    if balance.abs() >= FOLD_BYTES {
        (0, balance)
    } else {
        (balance, 0)
    }
}

fn size(layout: Layout) -> i64 {
    i64::try_from(layout.size()).unwrap_or(i64::MAX)
}

/// Returns the allocator's free pages to the operating system now.
///
/// mimalloc gives freed memory back lazily, on a later allocation or free after a short
/// delay. A compaction frees a large working set at once and the server may then sit idle,
/// so its memory would stay resident (~20 MiB per million small keys, measured) until traffic
/// happened to trigger the purge.
pub fn release_free_pages() {
    // SAFETY: `mi_collect` takes no pointers; it only walks mimalloc's own structures, which
    // it synchronises itself, and may be called from any thread at any time.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

/// Turns transparent huge pages off for this process, as Redis does at start
/// (`disable-thp yes`).
///
/// With THP the kernel backs mimalloc's arenas with 2 MiB pages: RSS counts a huge page in
/// full however little of it is in use, and a page given back and touched again is zeroed
/// 2 MiB at a time. On the benchmark host (BENCHMARKS.md, "Transparent huge pages off", by
/// hand 2026-12-04): RSS per 1 KB session 1,183–1,197 against 1,307–1,336 bytes, per small
/// key 69–72 against 83–104, and `redis-benchmark` SET -P 16 205k–237k against 129k–149k
/// SETs a second, where 43% of the samples had been the kernel zeroing huge pages.
pub fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integers only and touches none of our memory.
    #[allow(unsafe_code)]
    let refused = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0;
    if refused {
        let error = std::io::Error::last_os_error();
        tracing::warn!(%error, "transparent huge pages stay on for this process");
    }
}

/// How long a thread goes between returning its free pages ([`release_free_pages_when_due`]).
const RELEASE_EVERY: Duration = Duration::from_secs(1);

thread_local! {
    static LAST_RELEASE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Returns this thread's free pages to the operating system if it has not for a while.
///
/// mimalloc keeps the pages each thread freed in that thread's own heap until the thread
/// allocates again after its purge delay or collects: a worker that goes idle after a burst
/// (a bulk load, a large pipeline) would keep them resident for good, and no other thread can
/// collect for it. Called when a runtime worker parks, so a worker running out of work gives
/// them back, at most once per [`RELEASE_EVERY`] so a busy one does not pay for it often.
pub fn release_free_pages_when_due() {
    let now = Instant::now();
    let due = LAST_RELEASE
        .try_with(|last| {
            let due = release_due(last.get(), now);
            if due {
                last.set(Some(now));
            }
            due
        })
        .unwrap_or(false);
    if due {
        release_free_pages();
    }
}

fn release_due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|at| now.saturating_duration_since(at) >= RELEASE_EVERY)
}

/// The thread that drops what was left to be freed lazily (UNLINK, ASYNC flushes, what the
/// `lazyfree-lazy-*` parameters cover: `staykv_engine::lazyfree`), so that no command waits
/// for the allocator to walk a large collection. It ends with the server (when the queue's sender is dropped).
#[derive(Debug)]
pub struct LazyFreer {
    queue: std::sync::mpsc::Sender<Garbage>,
}

impl LazyFreer {
    pub fn start() -> LazyFreer {
        let (queue, removed) = std::sync::mpsc::channel::<Garbage>();
        let spawned =
            std::thread::Builder::new().name("staykv-lazyfree".into()).spawn(move || removed.iter().for_each(drop));
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the lazy-free thread: large values will be freed inline");
        }
        LazyFreer { queue }
    }

    pub fn free(&self, garbage: Garbage) {
        // Without the thread the send fails and hands the garbage back, dropped right here.
        let _ = self.queue.send(garbage);
    }
}

/// Bytes mimalloc holds from the system: what is allocated plus its free pages not yet given
/// back (MEMORY STATS' `allocator.active` and `allocator.resident`). On Linux mimalloc does
/// not tell resident pages from committed ones, so that one figure stands for both.
pub fn allocator_committed() -> u64 {
    let mut committed: usize = 0;
    // SAFETY: every out-parameter but `current_commit` is null, which mimalloc documents as
    // "not wanted"; `current_commit` points to a live local it only writes.
    #[allow(unsafe_code)]
    unsafe {
        let none = std::ptr::null_mut();
        libmimalloc_sys::mi_process_info(none, none, none, none, none, &mut committed, none, none);
    }
    committed as u64
}

/// mimalloc, counted.
pub struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to `MiMalloc`, which upholds the `GlobalAlloc`
// contract; the wrapper only adds arithmetic on thread-local and atomic integers, which
// never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { MiMalloc.alloc(layout) };
        if !ptr.is_null() {
            count(size(layout));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(size(layout));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        count(-size(layout));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(i64::try_from(new_size).unwrap_or(i64::MAX) - size(layout));
        }
        new
    }
}

/// Folds this thread's balance into the global count now, so that what it just freed shows.
pub fn fold_here() {
    let balance = LOCAL
        .try_with(|cell| {
            let mut local = cell.get();
            let balance = std::mem::take(&mut local.unfolded);
            cell.set(local);
            balance
        })
        .unwrap_or(0);
    if balance != 0 {
        ALLOCATED.fetch_add(balance, Ordering::Relaxed);
    }
}

/// While one lives, what its thread allocates (less what it frees) counts in `used_memory`
/// but not against `maxmemory`; dropped, whatever the thread still holds counts again.
pub struct NotCountedForEviction(());

impl NotCountedForEviction {
    pub fn enter() -> NotCountedForEviction {
        let _ = LOCAL.try_with(|cell| cell.set(Local { not_counted: Some(0), ..cell.get() }));
        NotCountedForEviction(())
    }
}

impl Drop for NotCountedForEviction {
    fn drop(&mut self) {
        let net = LOCAL
            .try_with(|cell| {
                let local = cell.get();
                cell.set(Local { not_counted: None, ..local });
                local.not_counted.unwrap_or(0)
            })
            .unwrap_or(0);
        NOT_COUNTED.fetch_sub(net, Ordering::Relaxed);
    }
}

/// Bytes held by threads inside [`NotCountedForEviction`].
pub fn not_counted() -> u64 {
    u64::try_from(NOT_COUNTED.load(Ordering::Relaxed)).unwrap_or(0)
}

/// Bytes currently allocated by the process (`used_memory`).
pub fn used() -> u64 {
    u64::try_from(ALLOCATED.load(Ordering::Relaxed)).unwrap_or(0)
}

/// `maxmemory` in bytes, 0 for none.
pub fn limit() -> u64 {
    LIMIT.load(Ordering::Relaxed)
}

pub fn set_limit(bytes: u64) {
    LIMIT.store(bytes, Ordering::Relaxed);
}

/// Allocated memory, less `not_counted()` (the log's buffers, as Redis leaves out its AOF
/// buffer, and what else the caller knows to be free), is over `maxmemory`. Asked before
/// every command: without a limit that is one load of a value that seldom changes; the
/// allocation count, which every thread's allocations move, is read only when there is a
/// limit.
pub fn over_limit(not_counted: impl FnOnce() -> u64) -> bool {
    let limit = limit();
    limit > 0 && {
        let used = used();
        used > limit && used.saturating_sub(not_counted()) > limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_thread_allocates_while_not_counted_is_left_out_until_it_leaves() {
        let held = std::thread::spawn(|| {
            let scope = NotCountedForEviction::enter();
            let buffer = vec![1u8; 1 << 20];
            let inside = not_counted();
            drop(scope);
            (inside, buffer)
        })
        .join()
        .unwrap_or_default();
        assert!(held.0 >= 1 << 20, "{} bytes not counted inside", held.0);
        assert!(not_counted() < 1 << 20, "counted again once the scope ends");
        assert_eq!(held.1.len(), 1 << 20);
    }

    #[test]
    fn balances_fold_into_the_global_count_past_the_threshold() {
        assert_eq!(fold(0, FOLD_BYTES - 1), (FOLD_BYTES - 1, 0));
        assert_eq!(fold(FOLD_BYTES - 1, 1), (0, FOLD_BYTES));
        assert_eq!(fold(10, -FOLD_BYTES - 10), (0, -FOLD_BYTES));
        assert_eq!(fold(-5, 5), (0, 0));
    }

    #[test]
    fn a_thread_releases_its_pages_at_its_first_park_then_once_per_interval() {
        let start = Instant::now();
        assert!(release_due(None, start));
        assert!(!release_due(Some(start), start));
        assert!(!release_due(Some(start), start + RELEASE_EVERY - Duration::from_millis(1)));
        assert!(release_due(Some(start), start + RELEASE_EVERY));
    }
}
