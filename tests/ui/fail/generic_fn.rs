use jobs::job;

#[job]
async fn send_mail<T: ToString>(user_id: T) -> Result<(), std::io::Error> {
    let _ = user_id.to_string();
    Ok(())
}

fn main() {}
