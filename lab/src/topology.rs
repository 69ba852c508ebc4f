//! containerlab topology files: parsed with serde_yaml_ng into the subset the
//! netns runner plays, with every field it does not support reported as a
//! warning (never silently ignored).
//!
//! Node settings merge like containerlab's: node over `kinds.<kind>` over
//! `defaults`. The role a node plays in the runner (tortie, bird, frr, gobgp,
//! exabgp or a plain linux box) comes from the label `tortie-lab.role`, else
//! from its image name. Containers on a tortie node are listed in the env
//! variable `TORTIE_CONTAINERS` ("c1 c2=10.244.1.10"), which the node image's
//! entrypoint also reads under containerlab.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::error::{LabError, Result};

/// The top level of a `.clab.yml` file.
#[derive(Clone, Debug, Deserialize)]
pub struct TopologyFile {
    pub name: String,
    pub prefix: Option<String>,
    pub mgmt: Option<Value>,
    pub topology: Body,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `topology:`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Body {
    #[serde(default)]
    pub defaults: NodeDef,
    #[serde(default)]
    pub kinds: BTreeMap<String, NodeDef>,
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeDef>,
    #[serde(default)]
    pub links: Vec<LinkDef>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A node (or a kind/defaults block).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NodeDef {
    pub kind: Option<String>,
    pub image: Option<String>,
    #[serde(default)]
    pub binds: Vec<String>,
    #[serde(default)]
    pub exec: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, Value>,
    #[serde(default)]
    pub labels: BTreeMap<String, Value>,
    /// Accepted for containerlab (the image's command); the runner starts the
    /// node's daemon itself.
    pub cmd: Option<String>,
    pub group: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One `links:` entry (the brief form: `endpoints: ["a:eth1", "b:eth1"]`).
#[derive(Clone, Debug, Deserialize)]
pub struct LinkDef {
    #[serde(default)]
    pub endpoints: Vec<String>,
    pub mtu: Option<u32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// What a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Tortie,
    Bird,
    Frr,
    Gobgp,
    Exabgp,
    /// Only `exec` lines (a plain router or host).
    Linux,
}

impl Role {
    fn from_label(s: &str) -> Option<Role> {
        Some(match s {
            "tortie" => Role::Tortie,
            "bird" => Role::Bird,
            "frr" => Role::Frr,
            "gobgp" => Role::Gobgp,
            "exabgp" => Role::Exabgp,
            "linux" => Role::Linux,
            _ => return None,
        })
    }

    fn from_image(image: &str) -> Role {
        // The repository's last path element, without the tag: daemons are
        // checked before tortie so `tortie-lab/bird:2` is BIRD.
        let name = image.rsplit('/').next().unwrap_or(image);
        let name = name.split(':').next().unwrap_or(name);
        if name.contains("bird") {
            Role::Bird
        } else if name.contains("frr") {
            Role::Frr
        } else if name.contains("gobgp") {
            Role::Gobgp
        } else if name.contains("exabgp") {
            Role::Exabgp
        } else if name.contains("tortie") {
            Role::Tortie
        } else {
            Role::Linux
        }
    }
}

/// A bind `src:dst[:opts]` with `src` resolved against the topology's folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
}

/// A container to create beside a tortie node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerDef {
    pub id: String,
    pub ip: Option<String>,
}

/// A node after merging defaults and kinds.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub kind: String,
    pub image: String,
    pub role: Role,
    pub binds: Vec<Bind>,
    pub exec: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub containers: Vec<ContainerDef>,
}

impl Node {
    /// The bound file whose container path ends with `suffix`.
    pub fn bound(&self, suffix: &str) -> Option<&Path> {
        self.binds
            .iter()
            .find(|b| b.target.ends_with(suffix))
            .map(|b| b.source.as_path())
    }
}

/// One veth: `(node, interface)` at each end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub a: (String, String),
    pub b: (String, String),
    pub mtu: Option<u32>,
}

/// A topology ready for the runner.
#[derive(Clone, Debug)]
pub struct Topology {
    pub name: String,
    pub path: PathBuf,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    /// Fields present in the file that the runner does not support.
    pub warnings: Vec<String>,
}

fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

impl Topology {
    /// Reads and checks `path`. `name` overrides the lab name (like
    /// `containerlab deploy --name`).
    pub fn load(path: &Path, name: Option<&str>) -> Result<Topology> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LabError::io(format!("reading topology {}", path.display()), e))?;
        Self::parse(&text, path, name)
    }

    /// Parses topology text; `path` locates relative bind sources.
    pub fn parse(text: &str, path: &Path, name: Option<&str>) -> Result<Topology> {
        let err = |m: String| LabError::Topology {
            path: path.display().to_string(),
            message: m,
        };
        let file: TopologyFile = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut warnings = Vec::new();
        for k in file.extra.keys() {
            warnings.push(format!(
                "top-level field `{k}` is not supported by the runner (ignored)"
            ));
        }
        if file.mgmt.is_some() {
            warnings.push("`mgmt` is not used by the runner (no management network)".into());
        }
        if let Some(p) = &file.prefix {
            warnings.push(format!(
                "`prefix: {p}` ignored: the runner always names namespaces clab-<lab>-<node>"
            ));
        }
        for k in file.topology.extra.keys() {
            warnings.push(format!(
                "topology field `{k}` is not supported by the runner (ignored)"
            ));
        }
        let lab = name.unwrap_or(&file.name).to_string();
        if lab.is_empty()
            || !lab
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err(format!(
                "lab name {lab:?} must be non-empty [A-Za-z0-9_-]"
            )));
        }
        let mut nodes = Vec::new();
        for (nname, def) in &file.topology.nodes {
            let kind_name = def
                .kind
                .clone()
                .or_else(|| file.topology.defaults.kind.clone())
                .unwrap_or_else(|| "linux".into());
            let kind = file.topology.kinds.get(&kind_name);
            let layers: Vec<&NodeDef> = [Some(&file.topology.defaults), kind, Some(def)]
                .into_iter()
                .flatten()
                .collect();
            let mut merged = NodeDef::default();
            for l in &layers {
                if l.image.is_some() {
                    merged.image = l.image.clone();
                }
                merged.binds.extend(l.binds.iter().cloned());
                merged.exec.extend(l.exec.iter().cloned());
                merged
                    .env
                    .extend(l.env.iter().map(|(k, v)| (k.clone(), v.clone())));
                merged
                    .labels
                    .extend(l.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                for k in l.extra.keys() {
                    warnings.push(format!(
                        "node {nname}: field `{k}` is not supported by the runner (ignored)"
                    ));
                }
            }
            if kind_name != "linux" {
                warnings.push(format!(
                    "node {nname}: kind `{kind_name}` played as `linux`"
                ));
            }
            let image = merged.image.clone().unwrap_or_default();
            let role = match merged.labels.get("tortie-lab.role").map(value_string) {
                Some(r) => Role::from_label(&r)
                    .ok_or_else(|| err(format!("node {nname}: unknown tortie-lab.role {r:?}")))?,
                None => Role::from_image(&image),
            };
            let mut binds = Vec::new();
            for b in &merged.binds {
                let mut parts = b.splitn(3, ':');
                let (Some(src), Some(dst)) = (parts.next(), parts.next()) else {
                    return Err(err(format!("node {nname}: bind {b:?} is not src:dst")));
                };
                let src = PathBuf::from(src);
                let source = if src.is_absolute() {
                    src
                } else {
                    base.join(src)
                };
                binds.push(Bind {
                    source,
                    target: dst.to_string(),
                });
            }
            let env: BTreeMap<String, String> = merged
                .env
                .iter()
                .map(|(k, v)| (k.clone(), value_string(v)))
                .collect();
            let containers = env
                .get("TORTIE_CONTAINERS")
                .map(|s| {
                    s.split_whitespace()
                        .map(|c| match c.split_once('=') {
                            Some((id, ip)) => ContainerDef {
                                id: id.into(),
                                ip: Some(ip.into()),
                            },
                            None => ContainerDef {
                                id: c.into(),
                                ip: None,
                            },
                        })
                        .collect()
                })
                .unwrap_or_default();
            nodes.push(Node {
                name: nname.clone(),
                kind: kind_name,
                image,
                role,
                binds,
                exec: merged.exec,
                env,
                containers,
            });
        }
        let mut links = Vec::new();
        for (i, l) in file.topology.links.iter().enumerate() {
            for k in l.extra.keys() {
                warnings.push(format!(
                    "link {i}: field `{k}` is not supported by the runner (ignored)"
                ));
            }
            let ends: Vec<(String, String)> = l
                .endpoints
                .iter()
                .map(|e| {
                    e.split_once(':')
                        .map(|(n, i)| (n.to_string(), i.to_string()))
                        .ok_or_else(|| {
                            err(format!("link {i}: endpoint {e:?} is not node:interface"))
                        })
                })
                .collect::<Result<_>>()?;
            let [a, b] = <[(String, String); 2]>::try_from(ends)
                .map_err(|_| err(format!("link {i}: needs exactly two endpoints")))?;
            for (n, ifname) in [&a, &b] {
                if !file.topology.nodes.contains_key(n) {
                    return Err(err(format!("link {i}: unknown node {n}")));
                }
                if ifname.is_empty() || ifname.len() > 15 {
                    return Err(err(format!(
                        "link {i}: interface name {ifname:?} must be 1-15 characters"
                    )));
                }
            }
            links.push(Link { a, b, mtu: l.mtu });
        }
        Ok(Topology {
            name: lab,
            path: path.to_path_buf(),
            nodes,
            links,
            warnings,
        })
    }

    /// containerlab's container name, also the node's namespace name.
    pub fn namespace(&self, node: &str) -> String {
        format!("clab-{}-{node}", self.name)
    }

    /// The namespace of container `id` on `node`.
    pub fn container_namespace(&self, node: &str, id: &str) -> String {
        format!("clab-{}-{node}-{id}", self.name)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
name: t1
mgmt: {network: x}
topology:
  defaults:
    kind: linux
  kinds:
    linux:
      image: ghcr.io/example/tortie:latest
  nodes:
    n1:
      binds: ["n1.toml:/etc/tortie/tortie.toml:ro"]
      exec: ["ip addr add 192.0.2.1/24 dev eth1"]
      env: {TORTIE_CONTAINERS: "c1 c2=10.244.1.10"}
      startup-delay: 3
    r1:
      image: debian:12
      labels: {tortie-lab.role: bird}
  links:
    - endpoints: ["n1:eth1", "r1:eth1"]
"#;

    #[test]
    fn parses_merges_and_warns() {
        let t = Topology::parse(YAML, Path::new("/lab/t1.clab.yml"), None).unwrap();
        assert_eq!(t.name, "t1");
        let n1 = t.node("n1").unwrap();
        assert_eq!(n1.role, Role::Tortie);
        assert_eq!(n1.bound("tortie.toml"), Some(Path::new("/lab/n1.toml")));
        assert_eq!(
            n1.containers[1],
            ContainerDef {
                id: "c2".into(),
                ip: Some("10.244.1.10".into())
            }
        );
        assert_eq!(t.node("r1").unwrap().role, Role::Bird);
        assert_eq!(t.links[0].a, ("n1".to_string(), "eth1".to_string()));
        assert!(
            t.warnings.iter().any(|w| w.contains("startup-delay")),
            "{:?}",
            t.warnings
        );
        assert!(t.warnings.iter().any(|w| w.contains("mgmt")));
        assert_eq!(t.namespace("n1"), "clab-t1-n1");
        let renamed = Topology::parse(YAML, Path::new("x.yml"), Some("other")).unwrap();
        assert_eq!(renamed.namespace("n1"), "clab-other-n1");
    }

    #[test]
    fn rejects_bad_links() {
        let bad = "name: t\ntopology:\n  nodes: {a: {}}\n  links:\n    - endpoints: [\"a:eth1\", \"zz:eth1\"]\n";
        assert!(Topology::parse(bad, Path::new("x.yml"), None).is_err());
        let bad = "name: t\ntopology:\n  nodes: {a: {}}\n  links:\n    - endpoints: [\"a:eth1\"]\n";
        assert!(Topology::parse(bad, Path::new("x.yml"), None).is_err());
    }
}
