use jobs::job;

#[job]
async fn move_point((x, y): (i64, i64)) -> Result<(), std::io::Error> {
    let _ = x + y;
    Ok(())
}

fn main() {}
