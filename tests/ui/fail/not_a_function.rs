use jobs::job;

#[job]
struct SendMail {
    user_id: i64,
}

fn main() {}
