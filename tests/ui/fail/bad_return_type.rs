use jobs::job;

#[job]
async fn count_invoices(customer_id: i64) -> i64 {
    customer_id
}

fn main() {}
