// The generated code must not depend on what the user's crate names
// `Result`, `Option`, `Box`, `Vec`, `serde`, `core`, `std` or `jobs`.
#![allow(dead_code, non_camel_case_types)]

mod jobs {}
mod serde {}
mod core {}
mod std {}
mod inventory {}

struct Result;
struct Option;
struct Box;
struct Vec;
struct String;
struct Ok;
struct Err;
struct Some;
struct None;
trait Serialize {}
trait Deserialize {}
trait Default {}
trait Iterator {}
trait Future {}
type Send = ();

#[::jobs::job(queue = "mail", backoff = exponential("10s", "1h"), timeout = "30s")]
async fn send_mail(user_id: i64, note: ::std::string::String, db: ::jobs::State<u8>)
    -> ::core::result::Result<(), ::std::io::Error> {
    let _ = (user_id, note, db);
    ::core::result::Result::Ok(())
}

fn main() {
    let _ = SendMail::new(9, ::std::string::String::new());
}
