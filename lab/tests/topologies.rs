//! Every topology file is valid against containerlab's JSON schema, parses in
//! the netns runner without warnings, and every bound file exists.

use std::path::{Path, PathBuf};

use tortie_lab::topology::{Role, Topology};

fn topology_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".clab.yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn all_five_topologies_exist() {
    let names: Vec<String> = topology_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "two-nodes",
        "mesh3",
        "leaf-spine",
        "route-reflector",
        "ipip-cross-subnet",
        "vxlan-cross-subnet",
        "dual-stack",
    ] {
        assert!(
            names.contains(&format!("{want}.clab.yml")),
            "missing {want}: {names:?}"
        );
    }
}

#[test]
fn topologies_match_containerlab_schema() {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/clab.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::draft7::new(&schema).expect("schema compiles");
    for f in topology_files() {
        let doc: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
    }
}

#[test]
fn schema_rejects_an_invalid_topology() {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/clab.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let bad: serde_json::Value = serde_yaml_ng::from_str(
        "name: x\ntopology:\n  nodes:\n    a: {kind: 7}\n  links: [{endpoints: 3}]\n",
    )
    .unwrap();
    assert!(!validator.is_valid(&bad));
}

#[test]
fn topologies_parse_without_warnings_and_binds_exist() {
    for f in topology_files() {
        let t = Topology::load(&f, None).unwrap_or_else(|e| panic!("{e}"));
        assert!(t.warnings.is_empty(), "{}: {:?}", f.display(), t.warnings);
        for n in &t.nodes {
            for b in &n.binds {
                assert!(
                    b.source.is_file(),
                    "{}: node {}: bind source {} missing",
                    f.display(),
                    n.name,
                    b.source.display()
                );
            }
            if n.role == Role::Tortie {
                let cfg = n
                    .bound("tortie.toml")
                    .unwrap_or_else(|| panic!("{}: {} has no tortie.toml", f.display(), n.name));
                let text = std::fs::read_to_string(cfg).unwrap();
                let _: toml::Table = text
                    .parse()
                    .unwrap_or_else(|e| panic!("{}: {e}", cfg.display()));
            }
        }
    }
}

/// Scale topologies (`tortie_lab::scale`, issue 16) are containerlab files
/// like the others: schema-valid, no runner warnings, every bind present,
/// every tortie config valid for the agent (`tortie check`'s parser).
#[test]
fn generated_scale_topologies_are_valid() {
    use tortie_lab::scale::{Fabric, Mode, Reflector, ScaleSpec, generate};
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/clab.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::draft7::new(&schema).expect("schema compiles");
    for (mode, fabric) in [
        (Mode::Mesh, Fabric::L2),
        (
            Mode::Rr {
                count: 2,
                kind: Reflector::Tortie,
            },
            Fabric::L2,
        ),
        (
            Mode::Rr {
                count: 2,
                kind: Reflector::Bird,
            },
            Fabric::L2,
        ),
        (
            Mode::Rr {
                count: 2,
                kind: Reflector::Frr,
            },
            Fabric::L2,
        ),
        (Mode::Mesh, Fabric::Routed),
        (
            Mode::Rr {
                count: 2,
                kind: Reflector::Bird,
            },
            Fabric::Routed,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let spec = ScaleSpec {
            name: "scale-test".into(),
            nodes: 120,
            containers: 2,
            mode,
            hold_time: 9,
            // BFD everywhere it is generated (not with FRR reflectors, not routed).
            bfd: fabric == Fabric::L2
                && !matches!(
                    mode,
                    Mode::Rr {
                        kind: Reflector::Frr,
                        ..
                    }
                ),
            fabric,
        };
        let f = generate(&spec, dir.path()).unwrap();
        let doc: serde_json::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{mode:?} {fabric:?}: {errors:#?}");
        let t = Topology::load(&f, None).unwrap();
        assert!(t.warnings.is_empty(), "{mode:?}: {:?}", t.warnings);
        // 120 nodes + reflectors on switches (2 bridges, or 8 racks) joined by a core.
        let tortie = t.nodes.iter().filter(|n| n.role == Role::Tortie).count();
        assert_eq!(tortie, spec.tortie_nodes().len(), "{mode:?}");
        let daemon_rrs = if tortie == 120 { spec.reflectors() } else { 0 };
        let switches = (spec.nodes + spec.reflectors()).div_ceil(spec.ports_per_switch());
        assert_eq!(
            t.nodes.len(),
            tortie + daemon_rrs + 1 + switches,
            "{mode:?}"
        );
        assert_eq!(t.node("n0").unwrap().containers.len(), 2);
        let n0 = std::fs::read_to_string(f.with_file_name("scale-test/n0.toml")).unwrap();
        let peers = n0.matches("[[peer]]").count();
        let bfd = if spec.bfd { peers } else { 0 };
        assert_eq!(n0.matches("bfd = true").count(), bfd, "{mode:?}");
        let vxlan = n0.contains("encapsulation = \"vxlan-cross-subnet\"");
        assert_eq!(vxlan, fabric == Fabric::Routed, "{mode:?} {fabric:?}");
        match mode {
            Mode::Mesh => assert_eq!(peers, 119),
            Mode::Rr { count, .. } => assert_eq!(peers, count),
        }
        for n in &t.nodes {
            for b in &n.binds {
                assert!(b.source.is_file(), "{mode:?}: {}", b.source.display());
            }
            if n.role == Role::Tortie {
                let cfg = n.bound("tortie.toml").unwrap();
                tortie_config::load(cfg).unwrap_or_else(|e| panic!("{}: {e:?}", cfg.display()));
            }
        }
    }
}
