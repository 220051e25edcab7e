use jobs::{job, JobContext, State};

#[derive(Clone)]
struct PgPool;

#[derive(Clone)]
struct Mailer;

#[job(queue = "mail", max_attempts = 5)]
async fn send_account_confirmation_email(
    user_id: i64,
    db: State<PgPool>,
    ctx: JobContext,
    State(mailer): State<Mailer>,
    config: jobs::State<std::sync::Arc<String>>,
) -> anyhow::Result<()> {
    let _ = (user_id, db.0, ctx.attempt(), mailer, config);
    Ok(())
}

#[job]
async fn only_injected(db: State<PgPool>, ctx: JobContext) -> anyhow::Result<()> {
    let _ = (db, ctx);
    Ok(())
}

fn main() {
    // Injected parameters are not part of `new` or `enqueue`.
    let _ = SendAccountConfirmationEmail::new(9);
    let _ = OnlyInjected::new();
}
