use chrono::{DateTime, NaiveDate, Utc};
use jobs::job;
use uuid::Uuid;

#[job]
async fn remind(user: Uuid, due: NaiveDate, sent_at: Option<DateTime<Utc>>) -> anyhow::Result<()> {
    let _ = (user, due, sent_at);
    Ok(())
}

fn main() {
    let _ = Remind::new(Uuid::nil(), NaiveDate::MIN, Some(Utc::now()));
}
