//! The architecture invariants of docs/ARCHITECTURE.md ("Dependencies"),
//! checked on the resolved dependency graph that `cargo metadata` reports:
//! dependencies point one way along the data's flow, only the crates that
//! join link DataFusion, and there is one Arrow in the tree.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// The resolved graph: package id → (name, deps as (package id, kinds)).
struct Graph {
    names: BTreeMap<String, String>,
    deps: BTreeMap<String, Vec<(String, Vec<String>)>>,
    members: BTreeSet<String>,
}

/// `cargo metadata` once for all tests of this file.
fn graph() -> &'static Graph {
    static GRAPH: std::sync::OnceLock<Graph> = std::sync::OnceLock::new();
    GRAPH.get_or_init(read_graph)
}

fn read_graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let members = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    let deps = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let kinds = d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| k["kind"].as_str().unwrap_or("normal").to_owned())
                        .collect();
                    (d["pkg"].as_str().unwrap().to_owned(), kinds)
                })
                .collect();
            (node["id"].as_str().unwrap().to_owned(), deps)
        })
        .collect();
    Graph {
        names,
        deps,
        members,
    }
}

impl Graph {
    fn id(&self, name: &str) -> &str {
        self.members
            .iter()
            .find(|id| self.names[*id] == name)
            .unwrap_or_else(|| panic!("{name} is not a workspace member"))
    }

    /// Every package `name` links: its normal and build dependencies,
    /// transitively; with `dev`, its own dev-dependencies (what its tests,
    /// examples and benches link) too.
    fn links(&self, name: &str, dev: bool) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![(self.id(name).to_owned(), dev)];
        while let Some((id, with_dev)) = todo.pop() {
            for (dep, kinds) in &self.deps[&id] {
                let follows = kinds.iter().any(|k| k != "dev" || with_dev);
                if follows && seen.insert(self.names[dep].clone()) {
                    todo.push((dep.clone(), false));
                }
            }
        }
        seen
    }

    fn workspace(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|id| self.names[id].clone())
            .collect()
    }
}

/// The data's flow: a crate may depend on crates of an earlier stage only.
/// Crates beside the flow (synth, ledger, report) are stage 0 or 1 and
/// depend on no stage.
fn stage(name: &str) -> u8 {
    match name {
        "koppel-contract" => 0,
        "koppel-report" | "koppel-ledger" | "koppel-synth" => 1,
        "koppel-ingest" | "koppel-disclosure" => 1,
        "koppel-pseudonymise" => 2,
        "koppel-join" | "koppel-export" => 3,
        "koppel-testkit" => 3,
        "koppel-pipeline" => 4,
        "koppel" => 5,
        other => panic!("{other}: a new crate; give it a stage here and in ARCHITECTURE.md"),
    }
}

#[test]
fn dependencies_point_along_the_flow() {
    let g = graph();
    for name in g.workspace() {
        for dep in g.links(&name, false) {
            if dep.starts_with("koppel") {
                assert!(
                    stage(&dep) < stage(&name),
                    "{name} depends on {dep}, which is not upstream of it"
                );
            }
        }
    }
    // Beside the flow: the report page and the ledger know nothing of the
    // stages, synth writes the contract's formats itself (so the pair
    // tests the contract from both sides).
    for name in ["koppel-report", "koppel-ledger", "koppel-synth"] {
        let koppel: Vec<String> = g
            .links(name, false)
            .into_iter()
            .filter(|d| d.starts_with("koppel") && d != "koppel-contract")
            .collect();
        assert!(koppel.is_empty(), "{name} depends on {koppel:?}");
    }
    assert!(
        g.links("koppel-contract", false)
            .iter()
            .all(|d| !d.starts_with("koppel")),
        "koppel-contract depends on no other Koppel crate"
    );
}

/// The disclosure engine works on codes and counts: no Koppel crate, no
/// Arrow, no Parquet, no DataFusion, its tests included, so that it can be
/// reasoned about and property-tested on its own.
#[test]
fn the_disclosure_engine_stands_alone() {
    let g = graph();
    let links = g.links("koppel-disclosure", true);
    for forbidden in ["arrow", "arrow-array", "parquet", "datafusion"] {
        assert!(
            !links.contains(forbidden),
            "koppel-disclosure links {forbidden}"
        );
    }
    assert!(
        links.iter().all(|d| !d.starts_with("koppel")),
        "koppel-disclosure depends on {links:?}"
    );
}

#[test]
fn only_the_crates_that_join_link_datafusion() {
    let g = graph();
    let may = ["koppel-join", "koppel-pipeline", "koppel"];
    for name in g.workspace() {
        // Tests and examples included: an export test must not link it.
        let links = g.links(&name, true);
        if may.contains(&name.as_str()) {
            assert!(links.contains("datafusion"), "{name} links no DataFusion?");
        } else {
            assert!(
                !links.iter().any(|d| d.starts_with("datafusion")),
                "{name} (with its tests and examples) links DataFusion"
            );
        }
    }
}

#[test]
fn there_is_one_arrow_in_the_tree() {
    let g = graph();
    for crate_name in ["arrow", "parquet", "arrow-array", "arrow-schema"] {
        let versions = g.names.values().filter(|n| *n == crate_name).count();
        assert_eq!(versions, 1, "{crate_name} is in the tree {versions} times");
    }
}
