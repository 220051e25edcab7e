use jobs::job;

// Every mistake in the signature is reported at once.
#[job]
fn send_mail<T>(user_id: &str, (a, b): (i64, i64)) -> Result<(), std::io::Error> {
    let _ = (user_id, a, b);
    Ok(())
}

fn main() {}
