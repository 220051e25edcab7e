//! Compile-time behaviour of the dashboard's builder: no auth decision, no
//! router, with our own message. Refresh the messages with
//! `TRYBUILD=overwrite cargo test -p jobs-dashboard --test ui` and read the
//! diff before committing.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
}
