use jobs_core::{Jobs, MemoryStore};
use jobs_dashboard::Dashboard;

fn main() {
    let jobs = Jobs::new(MemoryStore::new());
    let _router: axum::Router = Dashboard::builder(jobs).router();
}
