use jobs::job;

#[job(
    name = "mail.send",
    queue = "mail",
    priority = 10,
    max_attempts = 25,
    backoff = fixed("30s"),
    timeout = "1h30m",
)]
pub(crate) async fn send_mail(user_id: i64) -> anyhow::Result<()> {
    let _ = user_id;
    Ok(())
}

fn main() {
    assert_eq!(SendMail::NAME, "mail.send");
    let _ = SendMail::new(1);
}
