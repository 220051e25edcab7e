//! The benchmark program (being written).
fn main() {}
