//! ARCHITECTURE.md's import rules, checked: each crate depends only on the pushmail crates the
//! table there allows, so imports keep pointing downward.

use std::collections::BTreeSet;

const ALLOWED: &[(&str, &[&str])] = &[
    ("shared/core", &[]),
    ("shared/store", &["pushmail-core"]),
    ("shared/http", &["pushmail-core"]),
    (
        "shared/push",
        &["pushmail-core", "pushmail-store", "pushmail-http"],
    ),
    (
        "shared/admin-api",
        &[
            "pushmail-core",
            "pushmail-store",
            "pushmail-push",
            "pushmail-http",
        ],
    ),
    (
        "shared/runtime",
        &[
            "pushmail-core",
            "pushmail-store",
            "pushmail-push",
            "pushmail-admin-api",
            "pushmail-http",
        ],
    ),
    (
        "functions/subscribe",
        &["pushmail-runtime", "pushmail-push", "pushmail-http"],
    ),
    (
        "functions/admin",
        &["pushmail-runtime", "pushmail-admin-api", "pushmail-http"],
    ),
    (
        "functions/sweeper",
        &["pushmail-runtime", "pushmail-push", "pushmail-core"],
    ),
    ("shared/listener", &["pushmail-core"]),
    ("shared/hints", &["pushmail-core"]),
    (
        "shared/imap",
        &["pushmail-core", "pushmail-store", "pushmail-listener"],
    ),
    (
        "shared/smtp",
        &["pushmail-core", "pushmail-store", "pushmail-listener"],
    ),
    (
        "container",
        &[
            "pushmail-runtime",
            "pushmail-push",
            "pushmail-admin-api",
            "pushmail-http",
            "pushmail-smtp",
            "pushmail-imap",
            "pushmail-listener",
            "pushmail-hints",
            "pushmail-store",
            "pushmail-core",
        ],
    ),
];

/// The pushmail crates in a manifest's `[dependencies]` table.
fn pushmail_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_dependencies = false;
    let mut found = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
        } else if in_dependencies && line.starts_with("pushmail-") {
            let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
            found.insert(name.to_owned());
        }
    }
    found
}

#[test]
fn crates_import_only_downward() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for (folder, allowed) in ALLOWED {
        let manifest = std::fs::read_to_string(format!("{root}/{folder}/Cargo.toml"))
            .unwrap_or_else(|e| panic!("{folder}/Cargo.toml: {e}"));
        let allowed: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
        let extra: Vec<_> = pushmail_dependencies(&manifest)
            .difference(&allowed)
            .cloned()
            .collect();
        assert!(
            extra.is_empty(),
            "{folder} depends on {extra:?}, which ARCHITECTURE.md does not allow"
        );
    }
    let workspace = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let members = workspace
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("the workspace lists its members");
    let members = members.matches('"').count() / 2 - 1; // less `tests`, the suites themselves
    assert_eq!(
        members,
        ALLOWED.len(),
        "a workspace member is missing from the import rules (and ARCHITECTURE.md)"
    );
}
