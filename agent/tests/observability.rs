//! The monitoring files shipped in `packaging/`: the Prometheus alerting rules
//! pass `promtool check rules` and their unit tests (`promtool test rules`),
//! and the Grafana dashboard is a well-formed dashboard whose every query is
//! valid PromQL (checked by promtool as a recording rule) over metrics tortie
//! exports. Grafana itself is not packaged in Debian and cannot be installed
//! here, so the dashboard is not rendered: it is type-checked against Grafana's
//! published schema instead (`@grafana/schema`, the TypeScript types Grafana
//! generates from its CUE dashboard and panel kinds), with each panel's options
//! checked against its plugin's own types (packaging/grafana/check/types.ts).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tortie_agent::metrics::{MetricsSnapshot, PeerMetrics, render};

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

/// Runs promtool; `None` (test skipped) only outside CI when it is missing.
fn promtool(args: &[&str], dir: &Path) -> Option<std::process::Output> {
    match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: promtool not available ({e})");
            None
        }
        Err(e) => panic!("promtool missing in CI (Debian package prometheus): {e}"),
    }
}

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every metric family name a scrape can hold (counters with `_total`).
fn exported_names() -> HashSet<String> {
    let snapshot = MetricsSnapshot {
        peers: vec![PeerMetrics {
            address: "192.0.2.1".into(),
            asn: 65001,
            state: "Established".into(),
            messages_received: vec![("update".into(), 1)],
            messages_sent: vec![("update".into(), 1)],
            bfd_up: Some(true),
            name: "tor1".into(),
            session_type: "eBGP".into(),
            ..Default::default()
        }],
        ipam: vec![("free".into(), 1)],
        process: tortie_agent::procstat::read(),
        ..Default::default()
    };
    let text = render(snapshot).expect("render");
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Metric names in a PromQL expression: identifiers of tortie's and the
/// process collector's families (label names and functions are not).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i > start {
            let word = &expr[start..i];
            if word.starts_with("tortie_") || word.starts_with("process_") {
                names.insert(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn alerting_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = packaging().join("prometheus");
    let Some(check) = promtool(&["check", "rules", "tortie-alerts.yml"], &dir) else {
        return;
    };
    assert_ok(&check, "promtool check rules");
    let Some(test) = promtool(&["test", "rules", "tortie-alerts.test.yml"], &dir) else {
        return;
    };
    assert_ok(&test, "promtool test rules");
}

#[test]
fn alerting_rules_use_only_exported_metrics() {
    let text = std::fs::read_to_string(packaging().join("prometheus/tortie-alerts.yml"))
        .expect("rules file");
    let exported = exported_names();
    let used = metric_names(&text);
    assert!(used.len() >= 5, "{used:?}");
    for name in used {
        assert!(exported.contains(&name), "{name} is not exported by tortie");
    }
}

#[test]
fn dashboard_is_well_formed_and_queries_exported_metrics() {
    let path = packaging().join("grafana/tortie.json");
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("JSON");
    for key in [
        "title",
        "uid",
        "schemaVersion",
        "panels",
        "templating",
        "time",
    ] {
        assert!(dash.get(key).is_some(), "dashboard has no {key}");
    }
    let vars: HashSet<&str> = dash["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        vars.contains("datasource") && vars.contains("instance"),
        "{vars:?}"
    );

    let exported = exported_names();
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = HashSet::new();
    let mut cells = HashSet::new();
    let mut exprs = Vec::new();
    for p in panels {
        let title = p["title"].as_str().expect("panel title");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "{title}: duplicate id"
        );
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().expect("x"),
            g["y"].as_u64().expect("y"),
            g["w"].as_u64().expect("w"),
            g["h"].as_u64().expect("h"),
        );
        assert!(w > 0 && h > 0 && x + w <= 24, "{title}: gridPos {g}");
        // No two panels cover the same cell of the 24-column grid.
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(cells.insert((cx, cy)), "{title} overlaps another panel");
            }
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert!(t["refId"].as_str().is_some(), "{title}: no refId");
            let expr = t["expr"].as_str().expect("expr");
            let used = metric_names(expr);
            assert!(!used.is_empty(), "{title}: {expr} uses no tortie metric");
            for name in used {
                assert!(
                    exported.contains(&name),
                    "{title}: {name} is not exported by tortie"
                );
            }
            exprs.push(expr.to_string());
        }
    }
    // Every query is valid PromQL: promtool checks them as recording rules
    // (Grafana's variables replaced by what they stand for).
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let e = e
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {}\n",
            serde_json::to_string(&e).expect("quote")
        ));
    }
    std::fs::write(dir.path().join("q.yml"), rules).expect("write");
    let Some(out) = promtool(&["check", "rules", "q.yml"], dir.path()) else {
        return;
    };
    assert_ok(&out, "the dashboard's queries");
}

/// The dashboard as a TypeScript literal of type `CheckedDashboard`: `tsc`
/// refuses an unknown key anywhere (excess property check), a missing required
/// field, or a value outside its enum — what Grafana's schema says, not ours.
#[test]
fn dashboard_type_checks_against_grafanas_schema() {
    let check = packaging().join("grafana/check");
    let tsc = check.join("node_modules/.bin/tsc");
    if !tsc.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} missing in CI: lab/install-deps runs npm ci there",
            tsc.display()
        );
        eprintln!("skipped: run lab/install-deps (npm ci in packaging/grafana/check)");
        return;
    }
    let dashboard =
        std::fs::read_to_string(packaging().join("grafana/tortie.json")).expect("dashboard");
    let types = check.canonicalize().expect("check dir").join("types");
    let dir = tempfile::tempdir().expect("tempdir");
    let checked = |name: &str, json: &str| {
        let file = dir.path().join(name);
        std::fs::write(
            &file,
            format!(
                "import type {{ CheckedDashboard }} from {};\nexport const dashboard: CheckedDashboard = {json};\n",
                serde_json::to_string(&types.display().to_string()).expect("quote")
            ),
        )
        .expect("write");
        Command::new(&tsc)
            .args([
                "--noEmit", "--strict", "--target", "es2022", "--module", "esnext",
            ])
            .args(["--moduleResolution", "bundler"])
            .arg(&file)
            .output()
            .expect("tsc runs")
    };
    assert_ok(
        &checked("tortie.ts", &dashboard),
        "tsc on packaging/grafana/tortie.json",
    );
    // The check can fail: a misspelt option and an unknown legend mode are refused.
    for (from, to) in [
        ("\"gridPos\"", "\"gridPosition\""),
        ("\"displayMode\": \"list\"", "\"displayMode\": \"lists\""),
    ] {
        assert!(dashboard.contains(from), "{from}");
        let out = checked("broken.ts", &dashboard.replacen(from, to, 1));
        assert!(!out.status.success(), "tsc accepted {to}");
    }
}

#[test]
fn names_are_found_in_expressions() {
    assert_eq!(
        metric_names(
            "sum by (peer) (rate(tortie_bgp_messages_sent_total{instance=~\"x\"}[5m])) / process_max_fds"
        ),
        ["process_max_fds", "tortie_bgp_messages_sent_total"]
            .into_iter()
            .map(str::to_string)
            .collect()
    );
}

/// The systemd unit's `Documentation=` names files the README's install steps
/// put there (`docs/*.md` into /usr/share/doc/tortie).
#[test]
fn the_units_documentation_exists_once_installed() {
    let root = packaging().join("..");
    let unit = std::fs::read_to_string(packaging().join("tortie.service")).expect("unit");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    assert!(
        readme.contains("install -D -m 0644 -t /usr/share/doc/tortie docs/*.md"),
        "the README does not install the docs"
    );
    let uris: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Documentation="))
        .flat_map(str::split_whitespace)
        .collect();
    assert!(!uris.is_empty(), "no Documentation= in the unit");
    for uri in uris {
        let name = uri
            .strip_prefix("file:///usr/share/doc/tortie/")
            .unwrap_or_else(|| panic!("{uri}: not one of the installed docs"));
        assert!(
            root.join("docs").join(name).is_file(),
            "{uri}: no docs/{name}"
        );
    }
}
