use jobs::job;

// A job's output is stored with the job: a file handle cannot be.
#[job]
async fn open_report(path: String) -> Result<std::fs::File, std::io::Error> {
    std::fs::File::open(path)
}

// Nor can a borrowed value.
#[job]
async fn report_title(id: i64) -> anyhow::Result<&'static str> {
    let _ = id;
    Ok("title")
}

fn main() {}
