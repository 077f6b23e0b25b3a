//! Project automation: `cargo xtask ci | fixture-test | bench`.

fn main() {}
