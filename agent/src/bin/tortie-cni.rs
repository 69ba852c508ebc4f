//! `tortie-cni`: the CNI plugin; forwards to the agent's API.
fn main() {}
