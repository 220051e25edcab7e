use jobs::{job, JobId};

#[derive(serde::Serialize, serde::Deserialize)]
struct Invoice {
    number: String,
}

#[job]
async fn issue_invoice(order_id: i64) -> anyhow::Result<Invoice> {
    Ok(Invoice {
        number: format!("INV-{order_id}"),
    })
}

// Takes a `String`, not the `Invoice` that `issue_invoice` returns.
#[job]
async fn mail_invoice(number: String) -> anyhow::Result<()> {
    let _ = number;
    Ok(())
}

// Two arguments: which one would take the output?
#[job]
async fn archive_invoice(invoice: Invoice, folder: String) -> anyhow::Result<()> {
    let _ = (invoice, folder);
    Ok(())
}

fn main() {
    let parent = JobId(1);
    let _ = MailInvoice::after_output_of::<IssueInvoice>(parent);
    let _ = ArchiveInvoice::after_output_of::<IssueInvoice>(parent);
}
