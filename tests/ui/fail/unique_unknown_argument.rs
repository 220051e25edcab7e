use jobs::{job, State};

#[derive(Clone)]
struct PgPool;

// The key is made of stored arguments only: not a misspelt one, not an
// injected resource.
#[job(unique(by = [customer, db]))]
async fn sync_customer(customer_id: i64, db: State<PgPool>) -> anyhow::Result<()> {
    let _ = (customer_id, db);
    Ok(())
}

#[job(unique(by = [id]))]
async fn no_arguments() -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
