use jobs::{job, Produces};

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

// Through a type alias of `Result`, too.
#[job]
async fn count_rows(table: String) -> std::io::Result<u64> {
    let _ = table;
    Ok(3)
}

fn output_of<J: Produces>() -> &'static str {
    std::any::type_name::<J::Output>()
}

fn main() {
    assert!(output_of::<IssueInvoice>().ends_with("Invoice"));
    assert_eq!(output_of::<CountRows>(), "u64");
}
