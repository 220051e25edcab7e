use jobs::job;

#[derive(Debug)]
struct MailError;

#[job]
async fn send_mail(user_id: i64) -> Result<(), MailError> {
    let _ = user_id;
    Err(MailError)
}

fn main() {}
