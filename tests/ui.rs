//! Compile-time behaviour of `#[job]`: the forms it accepts (`ui/pass`) and
//! the mistakes it rejects, each with its committed message (`ui/fail`).
//! Refresh the messages with `TRYBUILD=overwrite cargo test --test ui` and
//! read the diff before committing.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
