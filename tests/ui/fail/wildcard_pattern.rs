use jobs::job;

#[job]
async fn send_mail(_: i64) -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
