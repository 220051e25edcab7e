use jobs::job;

#[job]
async fn send_mail(render: impl Fn(i64) -> String) -> Result<(), std::io::Error> {
    let _ = render(9);
    Ok(())
}

fn main() {}
