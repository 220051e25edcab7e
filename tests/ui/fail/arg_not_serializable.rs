use jobs::job;

struct Invoice {
    id: i64,
}

#[job]
async fn send_invoice(invoice: Invoice) -> Result<(), std::io::Error> {
    let _ = invoice.id;
    Ok(())
}

fn main() {}
