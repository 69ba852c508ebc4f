//! tortie-agent: wires config, the BGP speaker and the dataplane into one daemon.
