use std::rc::Rc;

use jobs::job;

#[job]
async fn send_mail(address: Rc<String>) -> Result<(), std::io::Error> {
    let _ = address;
    Ok(())
}

fn main() {}
