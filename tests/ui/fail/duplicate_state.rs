use jobs::{job, State};

#[derive(Clone)]
struct Mailer;

#[job]
async fn send_mail(mailer: State<Mailer>, user_id: i64, other: State<Mailer>) -> Result<(), std::io::Error> {
    let _ = (mailer, user_id, other);
    Ok(())
}

fn main() {}
