use jobs::{job, State};

// Every mistake in `key_limit(...)` is reported at once.
#[job(key_limit(by = [tenant], running = 0, per = 1))]
async fn sync_customer(customer_id: i64, db: State<String>) -> anyhow::Result<()> {
    let _ = (customer_id, db);
    Ok(())
}

#[job(key_limit(by = [db], running = "one", by = [customer_id]))]
async fn sync_again(customer_id: i64, db: State<String>) -> anyhow::Result<()> {
    let _ = (customer_id, db);
    Ok(())
}

#[job(key_limit = customer_id)]
async fn sync_once(customer_id: i64) -> anyhow::Result<()> {
    let _ = customer_id;
    Ok(())
}

#[job(concurrency_key = customer_id)]
async fn sync_twice(customer_id: i64) -> anyhow::Result<()> {
    let _ = customer_id;
    Ok(())
}

fn main() {}
