use std::borrow::Cow;

use jobs::job;

#[job]
async fn send_mail(address: Cow<'_, str>) -> Result<(), std::io::Error> {
    let _ = address;
    Ok(())
}

fn main() {}
