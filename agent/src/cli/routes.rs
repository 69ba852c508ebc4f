//! `tortie routes` as text: one section per family (IPv4 unicast, IPv6
//! unicast), each a table of prefixes and their paths, as the API's
//! [`RouteView`]s arrive (`-o json` prints those unchanged).

use super::table;
use crate::api::RouteView;

/// `tortie routes`: one section per family (IPv4 unicast, IPv6 unicast, as
/// `calicoctl node status` splits its tables), each with its prefix count.
pub fn render_routes(routes: &[RouteView]) -> String {
    let v6 = |r: &RouteView| match r.family.as_str() {
        "" => r.prefix.contains(':'),
        f => f == "ipv6",
    };
    let mut out = String::new();
    for (name, want_v6) in [("IPv4 unicast", false), ("IPv6 unicast", true)] {
        let section: Vec<&RouteView> = routes.iter().filter(|r| v6(r) == want_v6).collect();
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "{name}: {} prefix{}\n",
            section.len(),
            if section.len() == 1 { "" } else { "es" }
        ));
        if !section.is_empty() {
            out.push_str(&route_rows(&section));
        }
    }
    out
}

fn route_rows(routes: &[&RouteView]) -> String {
    let mut rows = Vec::new();
    for r in routes {
        for (i, p) in r.paths.iter().enumerate() {
            let mut flags = Vec::new();
            if p.filtered.is_some() {
                flags.push("filtered");
            }
            if p.best {
                flags.push("best");
            }
            if p.ecmp && !p.best {
                flags.push("ecmp");
            }
            if p.stale {
                flags.push("stale");
            }
            let from = p.peer.clone().unwrap_or_else(|| "local".to_string());
            let as_path = if p.as_path.is_empty() {
                "-".to_string()
            } else {
                p.as_path.clone()
            };
            rows.push(vec![
                if i == 0 {
                    r.prefix.clone()
                } else {
                    String::new()
                },
                p.next_hop.clone().unwrap_or_else(|| "-".into()),
                from,
                as_path,
                flags.join(","),
                if i == 0 {
                    match (&r.not_installed, r.installed) {
                        (_, true) => "yes".to_string(),
                        (Some(why), false) => format!("no ({why})"),
                        (None, false) => "no".to_string(),
                    }
                } else {
                    String::new()
                },
                p.filtered
                    .clone()
                    .or_else(|| p.reason.clone())
                    .unwrap_or_default(),
            ]);
        }
    }
    table(
        &[
            "Prefix", "Next hop", "From", "AS path", "Flags", "Kernel", "Note",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PathView;

    #[test]
    fn route_table_marks_best_and_kernel() {
        let r = RouteView {
            prefix: "10.244.2.0/26".into(),
            family: "ipv4".into(),
            installed: true,
            not_installed: None,
            paths: vec![PathView {
                peer: Some("192.0.2.12".into()),
                next_hop: Some("192.0.2.12".into()),
                as_path: String::new(),
                origin: "igp".into(),
                best: true,
                ecmp: true,
                ..Default::default()
            }],
        };
        let v6 = RouteView {
            prefix: "fd00:10:244:2::/120".into(),
            family: "ipv6".into(),
            installed: true,
            paths: vec![PathView {
                next_hop: Some("2001:db8:1::12".into()),
                ..r.paths[0].clone()
            }],
            ..r.clone()
        };
        let t = render_routes(&[v6, r]);
        let row = t.lines().nth(2).unwrap();
        assert!(
            row.contains("10.244.2.0/26") && row.contains("best") && row.contains("yes"),
            "{t}"
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "IPv4 unicast: 1 prefix", "{t}");
        assert_eq!(lines[4], "IPv6 unicast: 1 prefix", "{t}");
        assert!(
            lines[6].contains("fd00:10:244:2::/120") && lines[6].contains("2001:db8:1::12"),
            "{t}"
        );
        assert_eq!(
            render_routes(&[]),
            "IPv4 unicast: 0 prefixes\n\nIPv6 unicast: 0 prefixes\n"
        );
    }

    #[test]
    fn route_table_shows_filtered_paths_and_why_not_installed() {
        let r = RouteView {
            prefix: "10.244.1.0/26".into(),
            family: "ipv4".into(),
            installed: false,
            not_installed: Some("all paths filtered".into()),
            paths: vec![PathView {
                peer: Some("192.0.2.1".into()),
                next_hop: Some("192.0.2.1".into()),
                as_path: "65001".into(),
                origin: "igp".into(),
                filtered: Some("import guard: inside this node's pod block 10.244.1.0/26".into()),
                ..Default::default()
            }],
        };
        let t = render_routes(&[r]);
        let row = t.lines().nth(2).unwrap();
        assert!(
            row.contains("filtered")
                && row.contains("no (all paths filtered)")
                && row.contains("import guard: inside"),
            "{t}"
        );
    }
}
