use jobs::job;

#[job]
async fn send_mail(render: Box<dyn Fn(i64) -> String + Send>) -> Result<(), std::io::Error> {
    let _ = render(9);
    Ok(())
}

fn main() {}
