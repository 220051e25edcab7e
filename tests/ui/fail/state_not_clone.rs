use jobs::{job, State};

struct Mailer;

#[job]
async fn send_mail(mailer: State<Mailer>, user_id: i64) -> Result<(), std::io::Error> {
    let _ = (mailer, user_id);
    Ok(())
}

fn main() {}
