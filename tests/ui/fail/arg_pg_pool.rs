use jobs::job;
use sqlx::PgPool;

#[job]
async fn invalidate_invoices(db: PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE offers SET is_valid = false").execute(&db).await?;
    Ok(())
}

fn main() {}
