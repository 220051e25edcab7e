use jobs::job;

#[job]
async fn send_mail(address: &str) -> Result<(), std::io::Error> {
    let _ = address;
    Ok(())
}

fn main() {}
