//! `tortie`: the node agent and its CLI.
fn main() {}
