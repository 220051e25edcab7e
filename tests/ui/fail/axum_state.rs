// In an axum application `State` is axum's extractor, which the job server
// does not inject: the message names `jobs::State` and how to keep both.
use axum::extract::State;
use jobs::job;

#[derive(Clone)]
struct Mailer;

#[job]
async fn send_mail(mailer: State<Mailer>, user_id: i64) -> Result<(), std::io::Error> {
    let _ = (mailer.0, user_id);
    Ok(())
}

fn main() {}
