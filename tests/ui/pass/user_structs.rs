use jobs::job;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Address {
    street: String,
    city: String,
}

#[derive(Serialize, Deserialize)]
enum Kind {
    Welcome,
    Reminder { days: u32 },
}

#[job]
async fn send_letter(to: Address, kind: Kind, lines: Vec<Address>) -> anyhow::Result<()> {
    let _ = (to.street, to.city, kind, lines);
    Ok(())
}

fn main() {
    let _ = SendLetter::new(
        Address { street: "Main St".into(), city: "Springfield".into() },
        Kind::Reminder { days: 3 },
        vec![],
    );
    let _ = Kind::Welcome;
}
