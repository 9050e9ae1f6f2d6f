//! ARCHITECTURE.md's import rules, checked: each crate depends only on the pushmail crates the
//! table there allows, so imports keep pointing downward.

use std::collections::{BTreeMap, BTreeSet};

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

/// A crate's source files as module paths (`dynamo/mailbox.rs` is `dynamo::mailbox`;
/// `lib.rs`, `main.rs` and `mod.rs` are their folder's module), each with its text up to its
/// tests.
fn modules(src: &std::path::Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("lib" | "main" | "mod")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .to_owned();
            found.push((parts.join("::"), code));
        }
    }
    found
}

/// Which modules each module names through `crate::…` paths (the longest module prefix of each).
fn module_imports(modules: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeSet<&str> = modules.iter().map(|(name, _)| name.as_str()).collect();
    let mut imports = BTreeMap::new();
    for (name, code) in modules {
        let mut used = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            let path: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            let module = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find(|prefix| names.contains(prefix.as_str()));
            if let Some(module) = module.filter(|m| m != name && !m.is_empty()) {
                used.insert(module);
            }
        }
        imports.insert(name.clone(), used);
    }
    imports
}

/// A cycle among the modules, if there is one (a depth-first walk).
fn cycle(imports: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        at: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == at) {
            let mut found = path[start..].to_vec();
            found.push(at.to_owned());
            return Some(found);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_owned());
        for next in imports.get(at).into_iter().flatten() {
            if let Some(found) = walk(next, imports, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(at.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    imports
        .keys()
        .find_map(|start| walk(start, imports, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_files_of_a_crate_import_each_other() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let architecture = std::fs::read_to_string(format!("{root}/ARCHITECTURE.md")).unwrap();
    for rule in rules(&architecture) {
        let src = std::path::Path::new(root).join(&rule.folder).join("src");
        let imports = module_imports(&modules(&src));
        if let Some(cycle) = cycle(&imports) {
            panic!(
                "{}: files import each other: {}",
                rule.folder,
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn an_import_loop_is_found() {
    let modules = [
        ("a".to_owned(), "use crate::b::X;".to_owned()),
        ("b".to_owned(), "fn f() { crate::c::g() }".to_owned()),
        ("c".to_owned(), "use crate::a;".to_owned()),
        ("d".to_owned(), "use crate::a::Y;".to_owned()),
    ];
    let imports = module_imports(&modules);
    assert_eq!(cycle(&imports).map(|c| c.len()), Some(4));
    assert!(cycle(&module_imports(&modules[1..])).is_none());
}

/// The release profile leaves `panic` unset, so that `cargo build --release` keeps unwinding
/// (the process catches a session's panic) and cargo-lambda builds the Lambda bootstraps with
/// abort (its default when the profile does not say; see the root Cargo.toml).
#[test]
fn the_release_profile_leaves_the_panic_strategy_to_the_builder() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let workspace = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let release = workspace
        .split_once("\n[profile.release]\n")
        .map(|(_, rest)| rest.split("\n[").next().unwrap_or(rest))
        .expect("the workspace has a release profile");
    let panic = release
        .lines()
        .find(|line| line.trim_start().starts_with("panic"));
    assert_eq!(panic, None, "[profile.release] must not set panic");
}
