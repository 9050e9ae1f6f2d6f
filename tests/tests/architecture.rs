//! ARCHITECTURE.md's import rules, checked: each crate depends only on the pushmail crates the
//! table there allows, so imports keep pointing downward.

use std::collections::BTreeSet;

/// One row of ARCHITECTURE.md's table of crates.
struct Rule {
    folder: String,
    /// `None`: "all" (not checked).
    may_import: Option<BTreeSet<String>>,
}

/// The table "The crates and what each may import", as ARCHITECTURE.md has it: the crate, its
/// folder, what it is, and what it may import (short names: `core` is `pushmail-core`).
fn rules(architecture: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    for row in architecture
        .lines()
        .filter(|l| l.starts_with("| `pushmail"))
    {
        let cells: Vec<&str> = row
            .trim_matches(|c| c == '|' || c == ' ')
            .split(" | ")
            .map(str::trim)
            .collect();
        let (Some(folder), Some(imports)) = (cells.get(1), cells.last()) else {
            panic!("a row of ARCHITECTURE.md's table without cells: {row}");
        };
        let may_import = match *imports {
            "all" => None,
            "—" => Some(BTreeSet::new()),
            list => Some(
                list.split(',')
                    .map(|name| format!("pushmail-{}", name.trim()))
                    .collect(),
            ),
        };
        rules.push(Rule {
            folder: folder.trim_matches('`').to_owned(),
            may_import,
        });
    }
    rules
}

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
fn crates_import_only_what_architecture_md_allows() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let architecture = std::fs::read_to_string(format!("{root}/ARCHITECTURE.md")).unwrap();
    let rules = rules(&architecture);
    assert!(rules.len() > 10, "ARCHITECTURE.md's table was not found");
    for rule in &rules {
        let manifest = std::fs::read_to_string(format!("{root}/{}/Cargo.toml", rule.folder))
            .unwrap_or_else(|e| panic!("{}/Cargo.toml: {e}", rule.folder));
        let Some(allowed) = &rule.may_import else {
            continue;
        };
        let extra: Vec<_> = pushmail_dependencies(&manifest)
            .difference(allowed)
            .cloned()
            .collect();
        assert!(
            extra.is_empty(),
            "{} depends on {extra:?}, which ARCHITECTURE.md does not allow",
            rule.folder
        );
    }
    let workspace = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let members = workspace
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("the workspace lists its members");
    for member in members.split('"').skip(1).step_by(2) {
        assert!(
            rules.iter().any(|rule| rule.folder == member),
            "the workspace member {member} is not in ARCHITECTURE.md's table"
        );
    }
}

#[test]
fn the_table_is_read_as_written() {
    let table = "| `pushmail-a` | `shared/a` | what | — |\n| `pushmail-b` | `shared/b` | x | a, core |\n\
                 | `pushmail-tests` | `tests` | y | all |\nnot a row";
    let rules = rules(table);
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0].may_import.as_ref().map(BTreeSet::len), Some(0));
    let b: Vec<_> = rules[1].may_import.iter().flatten().cloned().collect();
    assert_eq!(b, ["pushmail-a", "pushmail-core"]);
    assert!(rules[2].may_import.is_none() && rules[2].folder == "tests");
}
