use std::time::Duration;

use jobs::{job, Job, JobState, State, Unique};

#[derive(Clone)]
struct PgPool;

/// Unique by every argument while unfinished.
#[job(unique)]
async fn sync_everything(customer_id: i64, full: bool) -> anyhow::Result<()> {
    let _ = (customer_id, full);
    Ok(())
}

/// Unique by one argument (a raw identifier too), per hour of run time,
/// held after success and failure.
#[job(queue = "sync", unique(by = [customer_id, r#type], period = "1h", held_after = [succeeded, failed]))]
async fn sync_customer(
    customer_id: i64,
    r#type: String,
    full: bool,
    db: State<PgPool>,
) -> anyhow::Result<()> {
    let _ = (customer_id, r#type, full, db);
    Ok(())
}

fn main() {
    assert_eq!(
        SyncEverything::options().unique,
        Some(Unique::while_unfinished())
    );
    assert_eq!(
        SyncCustomer::options().unique,
        Some(
            Unique::per_period(Duration::from_secs(3600))
                .by_args(&["customer_id", "type"])
                .held_after(JobState::Succeeded, true)
                .held_after(JobState::Failed, true)
        )
    );
    // Per request: another rule, or none.
    let _ = SyncCustomer::new(7, "crm".to_owned(), true).not_unique();
    let _ = SyncEverything::new(7, false).unique(Unique::per_period(Duration::from_secs(60)));
}
