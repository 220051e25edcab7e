use jobs::{job, JobContext};

#[job]
async fn send_mail(ctx: JobContext, user_id: i64, again: JobContext) -> Result<(), std::io::Error> {
    let _ = (ctx, user_id, again);
    Ok(())
}

fn main() {}
