//! `tortie-lab`: plays containerlab topology files with network namespaces.
fn main() {}
