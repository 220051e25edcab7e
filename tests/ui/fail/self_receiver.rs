use jobs::job;

struct Mailer;

impl Mailer {
    #[job]
    async fn send_mail(&self, user_id: i64) -> Result<(), std::io::Error> {
        let _ = user_id;
        Ok(())
    }
}

fn main() {}
