use std::fs::File;

use jobs::job;

#[job]
async fn import_invoices(file: File) -> Result<(), std::io::Error> {
    let _ = file;
    Ok(())
}

fn main() {}
