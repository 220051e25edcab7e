//! The benchmark's job: a no-op taking `{ i, t }` (t: enqueue time, µs since
//! the epoch). It counts its completions, and in W3 records its pickup
//! latency (`now - t`), so that every figure rests on what the handler saw.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use jobs::job;

/// Runs completed by this process's handlers.
static COMPLETED: AtomicU64 = AtomicU64::new(0);
/// Whether handlers record their latency (W3 only, so the drain of W2 pays nothing for it).
static RECORDING: AtomicBool = AtomicBool::new(false);
/// `(i, now - t)` in µs of each run, while recording.
static LATENCIES: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// Microseconds since the epoch, the unit of `t`.
pub(crate) fn now_us() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// The no-op job of PERFORMANCE.md.
#[job]
pub(crate) async fn bench_noop(i: u64, t: u64) -> anyhow::Result<()> {
    if RECORDING.load(Ordering::Relaxed) {
        let latency = now_us().saturating_sub(t);
        LATENCIES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((i, latency));
    }
    COMPLETED.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The no-op as a unique job, keyed by `i` (every key distinct, so every
/// enqueue stores a job): what `--unique` enqueues in W1 and W1b, to show
/// what computing and enforcing a key costs.
#[job(unique(by = [i]))]
pub(crate) async fn bench_unique(i: u64, t: u64) -> anyhow::Result<()> {
    let _ = (i, t);
    COMPLETED.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A request for unique job `i`, stamped now.
pub(crate) fn unique_request(i: u64) -> jobs::Request<BenchUnique> {
    BenchUnique::new(i, now_us())
}

/// Enqueues unique job `i` alone, stamped `t`.
pub(crate) async fn enqueue_unique(jobs: &jobs::Jobs, i: u64, t: u64) -> jobs::Result<jobs::JobId> {
    BenchUnique::enqueue(jobs, i, t).await
}

/// A request for job `i`, stamped now.
pub(crate) fn request(i: u64) -> jobs::Request<BenchNoop> {
    BenchNoop::new(i, now_us())
}

/// Enqueues job `i` alone (one call, one transaction), stamped `t`.
pub(crate) async fn enqueue(jobs: &jobs::Jobs, i: u64, t: u64) -> jobs::Result<jobs::JobId> {
    BenchNoop::enqueue(jobs, i, t).await
}

/// Completions counted by the handler.
pub(crate) fn completed() -> u64 {
    COMPLETED.load(Ordering::Relaxed)
}

/// Resets the handler's counter and latencies; starts recording latencies if asked.
pub(crate) fn reset(record: bool, capacity: usize) {
    COMPLETED.store(0, Ordering::Relaxed);
    let mut latencies = LATENCIES.lock().unwrap_or_else(|e| e.into_inner());
    latencies.clear();
    latencies.reserve(capacity);
    RECORDING.store(record, Ordering::Relaxed);
}

/// Stops recording and takes the `(i, latency)` pairs recorded so far.
pub(crate) fn take_latencies() -> Vec<(u64, u64)> {
    RECORDING.store(false, Ordering::Relaxed);
    std::mem::take(&mut *LATENCIES.lock().unwrap_or_else(|e| e.into_inner()))
}
