use jobs::{job, Jobs};

#[job(queue = "maintenance")]
async fn invalidate_invoices() -> anyhow::Result<()> {
    Ok(())
}

async fn nightly(jobs: &Jobs) -> jobs::Result<()> {
    InvalidateInvoices::enqueue(jobs).await?;
    InvalidateInvoices::new().enqueue(jobs).await?;
    jobs::Request::new(InvalidateInvoices).enqueue(jobs).await?;
    Ok(())
}

fn main() {
    let _ = nightly;
}
