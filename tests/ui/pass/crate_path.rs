// A crate that re-exports `jobs` names it with `crate = "..."`; here the
// path is used for every item the generated code names (see
// `fail/bad_crate_path.rs` for a path that does not exist).
mod my_framework {
    pub use ::jobs;
}

use my_framework::jobs::job;

#[job(crate = "my_framework::jobs", queue = "mail")]
async fn send_mail(user_id: i64) -> Result<(), std::io::Error> {
    let _ = user_id;
    Ok(())
}

fn main() {
    let _ = SendMail::new(9);
}
