use jobs::job;

#[job]
async fn send_mail(address: impl std::fmt::Display) -> Result<(), std::io::Error> {
    let _ = address.to_string();
    Ok(())
}

fn main() {}
