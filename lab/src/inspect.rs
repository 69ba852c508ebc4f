//! What a running lab looks like, for tests and the runner's messages: the
//! tail of every daemon log, pings between all containers, a tortie node's
//! status, and anything the lab left behind. Reads the lab's state
//! ([`Lab::state`], written by [`crate::runner`]); changes nothing.

use crate::error::{LabError, Result};
use crate::netns::{self, Netns, run};
use crate::runner::Lab;

impl Lab {
    /// The last lines of every daemon log, for failure messages.
    pub fn logs_tail(&self, lines: usize) -> String {
        let mut s = String::new();
        for d in &self.state.daemons {
            let log = self.node_dir(&d.node).join(format!("{}.log", d.name));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            s.push_str(&format!("--- {}/{} ({})\n", d.node, d.name, log.display()));
            s.push_str(&all[all.len().saturating_sub(lines)..].join("\n"));
            s.push('\n');
        }
        s
    }

    /// Pings every container from every other container (`count` probes
    /// each). Returns the number of pairs tried and the failures as
    /// `"node/id -> node/id (addr)"`.
    pub fn ping_all(&self, count: u32) -> (usize, Vec<String>) {
        let cs = &self.state.containers;
        let mut tried = 0;
        let mut failed = Vec::new();
        for a in cs {
            for b in cs {
                if a == b {
                    continue;
                }
                // Every address of b: both families of a dual-stack
                // container (counted once per pair).
                let mut pair = false;
                for addr in b.addresses() {
                    pair = true;
                    if !Netns::existing(&a.netns).ping(addr, count) {
                        failed.push(format!(
                            "{}/{} -> {}/{} ({addr})",
                            a.node, a.id, b.node, b.id
                        ));
                    }
                }
                tried += usize::from(pair);
            }
        }
        (tried, failed)
    }

    /// `tortie status -o json` of a tortie node, via its default socket.
    pub fn tortie_status(&self, node: &str) -> Result<serde_json::Value> {
        let out = run(&mut self.node_command(
            node,
            &["tortie".into(), "status".into(), "-o".into(), "json".into()],
        ))?;
        serde_json::from_str(&out)
            .map_err(|e| LabError::parse("tortie status -o json", format!("{e}: {out}")))
    }

    /// Anything the lab made that still exists: namespaces named after it
    /// and processes from the state file. Empty after a clean `down`.
    pub fn leftovers(&self) -> Vec<String> {
        let prefix = format!("clab-{}-", self.topo.name);
        let mut left: Vec<String> = netns::list_namespaces()
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .map(|n| format!("namespace {n}"))
            .collect();
        if self.workdir.exists() {
            left.push(format!("work dir {}", self.workdir.display()));
        }
        left
    }
}
