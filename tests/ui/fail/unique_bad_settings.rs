use jobs::job;

// Every mistake in `unique(...)` is reported at once.
#[job(unique(by = customer_id, period = "soon", held_after = [enqueued, deleted, lost], order = 1))]
async fn sync_customer(customer_id: i64) -> anyhow::Result<()> {
    let _ = customer_id;
    Ok(())
}

#[job(unique(by = [], period = "0s", by = [customer_id]))]
async fn sync_again(customer_id: i64) -> anyhow::Result<()> {
    let _ = customer_id;
    Ok(())
}

#[job(unique = true)]
async fn sync_once(customer_id: i64) -> anyhow::Result<()> {
    let _ = customer_id;
    Ok(())
}

fn main() {}
