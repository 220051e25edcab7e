use std::net::TcpStream;

use jobs::job;

#[job]
async fn send_mail(smtp: TcpStream) -> Result<(), std::io::Error> {
    let _ = smtp;
    Ok(())
}

fn main() {}
