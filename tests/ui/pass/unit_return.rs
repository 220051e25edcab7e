use jobs::job;

#[job]
async fn log_visit(page: String) {
    let _ = page;
}

#[job]
async fn log_visit_explicit(page: String) -> () {
    let _ = page;
}

#[job]
async fn string_error(page: String) -> Result<(), String> {
    Err(page)
}

fn main() {
    let _ = (LogVisit::new("/".into()), LogVisitExplicit::new("/".into()), StringError::new("/".into()));
}
