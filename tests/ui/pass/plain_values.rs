use jobs::{job, Jobs};

/// Sends the mail.
#[job]
pub async fn send_account_confirmation_email(user_id: i64) -> anyhow::Result<()> {
    let _ = user_id;
    Ok(())
}

#[job(queue = "mail", priority = -5, max_attempts = 3)]
async fn send_newsletter(
    subject: String,
    recipients: Vec<i64>,
    reply_to: Option<String>,
    mut attempts: u32,
    r#type: char,
) -> Result<(), std::io::Error> {
    attempts += 1;
    let _ = (subject, recipients, reply_to, attempts, r#type);
    Ok(())
}

pub async fn signup(jobs: Jobs) -> anyhow::Result<()> {
    SendAccountConfirmationEmail::enqueue(&jobs, 9).await?;
    let _id: jobs::JobId =
        SendNewsletter::enqueue(&jobs, "hi".to_owned(), vec![1, 2], None, 0, 'x').await?;
    let request: jobs::Request<SendNewsletter> =
        SendNewsletter::new("hi".to_owned(), vec![], Some("a@b.c".into()), 0, 'y').priority(1);
    request.enqueue(&jobs).await?;
    assert_eq!(SendNewsletter::NAME, "send_newsletter");
    Ok(())
}

fn main() {
    // The function stays callable.
    let _ = send_account_confirmation_email(9);
}
