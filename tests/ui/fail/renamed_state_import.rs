// `#[job]` recognises injected resources by the name `State`: under another
// name, `Resource<Mailer>` is taken for a stored argument and rejected.
use jobs::job;
use jobs::State as Resource;

#[derive(Clone)]
struct Mailer;

#[job]
async fn send_mail(mailer: Resource<Mailer>, user_id: i64) -> Result<(), std::io::Error> {
    let _ = (mailer.0, user_id);
    Ok(())
}

fn main() {}
