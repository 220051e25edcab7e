use jobs::job;

mod my_framework {}

#[job(crate = "my_framework::jobs")]
async fn send_mail(user_id: i64) -> Result<(), std::io::Error> {
    let _ = user_id;
    Ok(())
}

fn main() {}
