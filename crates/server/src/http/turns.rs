//! Large requests take turns. A pipeline body is parsed into one list of commands and its
//! reply is built whole: for short commands that is about 15 times the body (10 MiB of
//! `["PING"]` peaked at 150 MB). `--http-max-body` bounds one request; without a bound on
//! how many are worked on at once, the open connections multiplied it (ten such requests
//! took RSS from 57 MB to 1.5 GB). A request whose body is over [`LARGE_BODY`] therefore
//! holds a share of a budget of body bytes, twice the largest body allowed, from parsing
//! until its reply is built; others wait their turn in arrival order, for [`TURN_WAIT`] at
//! most (a pipeline blocked in a BLPOP holds its share meanwhile): then 503, to retry.
//! Small requests, the session traffic, never wait.

use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::ApiError;

/// Bodies up to this size run at once, whatever their number.
const LARGE_BODY: usize = 64 * 1024;

/// The budget's unit: a permit stands for a KiB of body.
const UNIT: usize = 1024;

/// The longest a large request waits for its turn.
const TURN_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct LargeRequests {
    permits: Semaphore,
    budget_units: u32,
}

impl LargeRequests {
    /// A budget of twice `max_body` bytes of large bodies at once.
    pub fn new(max_body: usize) -> LargeRequests {
        let units = (max_body.saturating_mul(2) / UNIT).max(LARGE_BODY / UNIT);
        // u32::MAX is far below the most permits a semaphore takes.
        let budget_units = u32::try_from(units).unwrap_or(u32::MAX);
        LargeRequests { permits: Semaphore::new(budget_units as usize), budget_units }
    }

    /// Waits for a body of `len` bytes' turn: `None` at once for a small one; 503 after
    /// [`TURN_WAIT`].
    pub async fn turn(&self, len: usize) -> Result<Option<SemaphorePermit<'_>>, ApiError> {
        self.turn_within(len, TURN_WAIT).await
    }

    async fn turn_within(&self, len: usize, wait: Duration) -> Result<Option<SemaphorePermit<'_>>, ApiError> {
        if len <= LARGE_BODY {
            return Ok(None);
        }
        let units = u32::try_from(len.div_ceil(UNIT)).unwrap_or(u32::MAX).min(self.budget_units);
        match tokio::time::timeout(wait, self.permits.acquire_many(units)).await {
            // The semaphore is never closed.
            Ok(permit) => Ok(permit.ok()),
            Err(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ERR too many large requests at once (pipelines over 64 KiB take turns); retry shortly",
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn large_bodies_wait_for_the_budget_small_ones_never() {
        let turns = LargeRequests::new(1 << 20); // a budget of 2 MiB
        let wait = Duration::from_millis(50);
        assert!(turns.turn_within(LARGE_BODY, wait).await.unwrap().is_none());
        let first = turns.turn_within(1536 << 10, wait).await.unwrap();
        assert!(first.is_some(), "a large body holds a share");
        let second = turns.turn_within(1536 << 10, wait).await;
        assert_eq!(second.err().map(|e| e.status), Some(StatusCode::SERVICE_UNAVAILABLE), "3 MiB at once under 2 MiB");
        assert!(turns.turn_within(100, wait).await.unwrap().is_none(), "a small body waited");
        // A body larger than the whole budget still gets a turn once the rest is free.
        drop(first);
        assert!(turns.turn_within(10 << 20, wait).await.unwrap().is_some());
    }
}
