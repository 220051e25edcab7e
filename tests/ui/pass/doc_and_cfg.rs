#![deny(missing_docs)]
//! A crate that documents everything.

use jobs::job;

/// Sends the mail. The generated `SendMail` carries this comment.
#[job]
pub async fn send_mail(user_id: i64) -> anyhow::Result<()> {
    let _ = user_id;
    Ok(())
}

/// Never built: the generated code goes with it.
#[cfg(any())]
#[job]
pub async fn never_built(user_id: i64) -> anyhow::Result<()> {
    let _ = user_id;
    Ok(())
}

fn main() {
    let _ = SendMail::new(1);
}
