use jobs::job;

// Every mistake is reported at once.
#[job(name = "", queue = mail, priority = 40000, max_attempts = 0, backoff = exponential("1h", "10s"))]
async fn send_mail(user_id: i64) -> Result<(), std::io::Error> {
    let _ = user_id;
    Ok(())
}

fn main() {}
