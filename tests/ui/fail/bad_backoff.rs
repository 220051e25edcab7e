use jobs::job;

#[job(backoff = linear("10s"))]
async fn send_mail(user_id: i64) -> Result<(), std::io::Error> {
    let _ = user_id;
    Ok(())
}

fn main() {}
