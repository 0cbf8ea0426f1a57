//! The code's layout, checked from the sources (like cargo's fingerprints, derived, not
//! declared):
//! - the library's top-level modules form layers: no module reaches back up (no cycles);
//! - inside a folder module, sibling files do not form cycles either;
//! - every file a stage binary can reach is a dep of its stage in `dvc.yaml`, so that changing
//!   it makes `dvc repro` re-run the stage instead of calling its output up to date.
//!
//! References are found by path (`crate::x`, `super::x`, `netsec::x`, grouped `{a, b}` forms)
//! with comments and string literals removed first. Rust needs a path to reach another module,
//! so this sees every edge; a glob re-export would hide one, and the crate has none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Source text without comments, string and char literals (so doc comments and messages that
/// mention `crate::x` are not edges).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                // raw string r"..." / r#"..."#
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' => {
                // a char literal ('x', '\n', '\u{..}') or a lifetime ('a): skip only the former
                let end = if b.get(i + 1) == Some(&b'\\') {
                    b[i + 2..].iter().position(|&c| c == b'\'').map(|p| i + 2 + p)
                } else if b.get(i + 2) == Some(&b'\'') {
                    Some(i + 2)
                } else {
                    None
                };
                match end {
                    Some(e) => {
                        out.push_str("' '");
                        i = e + 1;
                    }
                    None => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            _ => {
                let ch = text[i..].chars().next().unwrap();
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// First segments of every path that starts with `prefix::` (`prefix::a::b`, `prefix::{a, b::c}`).
fn heads(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let needle = format!("{prefix}::");
    let mut rest = code;
    while let Some(pos) = rest.find(&needle) {
        let before = rest[..pos].chars().last();
        rest = &rest[pos + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `foo_crate::` is not `crate::`
        }
        let rest_trim = rest.trim_start();
        if let Some(group) = rest_trim.strip_prefix('{') {
            // a grouped use: split the top level of the braces
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() {
                        found.insert(name);
                    }
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else if depth == 1 {
                    item.push(c);
                } else if item.trim().chars().all(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    // nested braces belong to the item already named
                }
            }
        } else {
            let name: String = rest_trim.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The library: top-level module -> its files (relative to the repo) and the top-level
/// modules it names.
struct Library {
    files: BTreeMap<String, Vec<String>>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn library(src: &Path) -> Library {
    let mut all = Vec::new();
    rs_files(src, &mut all);
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in all {
        let rel = path.strip_prefix(src).unwrap();
        let mut parts = rel.iter().map(|s| s.to_str().unwrap().to_owned());
        let first = parts.next().unwrap();
        if first == "bin" || first == "lib.rs" {
            continue;
        }
        let module = first.trim_end_matches(".rs").to_owned();
        let depth = rel.components().count() - 1; // 0 for src/x.rs, 1 for src/x/y.rs
        let code = code_only(&std::fs::read_to_string(&path).unwrap());
        let mut named = heads(&code, "crate");
        // `super::super::x` from src/m/y.rs names top-level `x`; `super::x` from src/m/sub/y.rs too.
        let up = if depth >= 1 { "super::".repeat(depth) } else { String::new() };
        if depth >= 1 {
            named.extend(heads(&code, up.trim_end_matches("::")).into_iter().filter(|n| n != "super"));
        }
        let repo_rel = format!("src/{}", rel.to_str().unwrap());
        files.entry(module.clone()).or_default().push(repo_rel);
        let e = edges.entry(module.clone()).or_default();
        e.extend(named.into_iter().filter(|n| *n != module && n != "self" && n != "super"));
    }
    // Keep only edges to modules of the crate (not `crate::Error` re-exported at the root).
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    for e in edges.values_mut() {
        e.retain(|n| modules.contains(n));
    }
    Library { files, edges }
}

/// A cycle in `edges`, as the list of its nodes, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == m).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// Cycles among the files of one folder module (`src/data/*.rs`): sibling `b` named by
/// `super::b` or `crate::data::b` from `a`. The folder's `mod.rs` declares its children and is
/// left out, as Rust requires that edge.
fn sibling_edges(src: &Path) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut out = BTreeMap::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(src).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    for dir in dirs.into_iter().filter(|d| d.is_dir() && !d.ends_with("bin")) {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let children: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter_map(|p| {
                let stem = p.file_stem()?.to_str()?.to_owned();
                (stem != "mod" && (p.is_dir() || p.extension().is_some_and(|e| e == "rs"))).then_some(stem)
            })
            .collect();
        let mut files = Vec::new();
        rs_files(&dir, &mut files);
        for f in files {
            let rel = f.strip_prefix(&dir).unwrap();
            let child = rel.iter().next().unwrap().to_str().unwrap().trim_end_matches(".rs").to_owned();
            if child == "mod" {
                continue;
            }
            let code = code_only(&std::fs::read_to_string(&f).unwrap());
            let depth = rel.components().count() - 1;
            let mut named = heads(&code, &format!("crate::{name}"));
            named.extend(heads(&code, "super::".repeat(depth + 1).trim_end_matches("::")));
            let e = edges.entry(child.clone()).or_default();
            e.extend(named.into_iter().filter(|n| *n != child && children.contains(n)));
        }
        out.insert(name, edges);
    }
    out
}

#[test]
fn library_modules_form_layers_without_cycles() {
    let lib = library(&root().join("src"));
    assert!(lib.edges.len() >= 10, "the module scan found too few modules: {:?}", lib.edges.keys());
    // The scan must see known edges, or an empty graph would pass.
    assert!(lib.edges["stages"].contains("bundle") && lib.edges["bundle"].contains("models"), "{:?}", lib.edges);
    if let Some(cycle) = find_cycle(&lib.edges) {
        panic!("module cycle: {} (a layer must not reach back up; move the shared item down)", cycle.join(" -> "));
    }
    for (folder, edges) in sibling_edges(&root().join("src")) {
        if let Some(cycle) = find_cycle(&edges) {
            panic!("module cycle inside src/{folder}/: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn config_imports_nothing_of_the_crate() {
    let lib = library(&root().join("src"));
    assert_eq!(lib.edges["params"], BTreeSet::new(), "params.rs must stay plain data");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let g = |pairs: &[(&str, &str)]| {
        let mut e: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            e.entry(a.to_string()).or_default().insert(b.to_string());
            e.entry(b.to_string()).or_default();
        }
        e
    };
    assert_eq!(find_cycle(&g(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(find_cycle(&g(&[("a", "b"), ("b", "c"), ("c", "a")])).unwrap().len(), 4);
    let code = code_only("use crate::{data::x, schema::{A, B}};\n// crate::nope\nlet s = \"crate::str\"; crate::models::fit(); my_crate::no;");
    assert_eq!(heads(&code, "crate"), BTreeSet::from(["data".into(), "schema".into(), "models".into()]));
}

/// Files of the repository that `src/bin/<bin>.rs` can reach: itself, the crate root, and every
/// file of each library module it names, closed over the module graph.
fn reachable(bin: &str) -> BTreeSet<String> {
    let src = root().join("src");
    let lib = library(&src);
    let main = code_only(&std::fs::read_to_string(src.join(format!("bin/{bin}.rs"))).unwrap());
    let mut todo: Vec<String> = heads(&main, "netsec").into_iter().filter(|m| lib.files.contains_key(m)).collect();
    let mut seen = BTreeSet::new();
    while let Some(m) = todo.pop() {
        if seen.insert(m.clone()) {
            todo.extend(lib.edges[&m].iter().cloned());
        }
    }
    let mut files: BTreeSet<String> = seen.iter().flat_map(|m| lib.files[m].iter().cloned()).collect();
    files.insert(format!("src/bin/{bin}.rs"));
    files.insert("src/lib.rs".into());
    files.insert("Cargo.toml".into());
    files.insert("Cargo.lock".into());
    files.insert("scripts/stage".into());
    files
}

/// For each stage of `dvc.yaml` run through `scripts/stage <bin>`: the bin and its deps.
fn dvc_stages(dvc_yaml: &str) -> Vec<(String, String, Vec<String>)> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(dvc_yaml).unwrap();
    let mut out = Vec::new();
    for (name, stage) in doc["stages"].as_mapping().unwrap() {
        let cmd = stage["cmd"].as_str().unwrap();
        let Some(bin) = cmd.strip_prefix("scripts/stage ").map(|r| r.split_whitespace().next().unwrap().to_owned())
        else {
            continue;
        };
        let deps = stage["deps"].as_sequence().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect();
        out.push((name.as_str().unwrap().to_owned(), bin, deps));
    }
    out
}

fn uncovered(bin: &str, deps: &[String]) -> Vec<String> {
    reachable(bin)
        .into_iter()
        .filter(|f| !deps.iter().any(|d| f == d || f.starts_with(&format!("{}/", d.trim_end_matches('/')))))
        .collect()
}

#[test]
fn every_file_a_stage_reaches_is_a_dep_of_the_stage() {
    let stages = dvc_stages(&std::fs::read_to_string(root().join("dvc.yaml")).unwrap());
    assert!(stages.len() >= 6, "dvc.yaml stages run through scripts/stage: {stages:?}");
    for (name, bin, deps) in &stages {
        assert!(root().join(format!("src/bin/{bin}.rs")).exists(), "stage {name}: no src/bin/{bin}.rs");
        let missing = uncovered(bin, deps);
        assert!(
            missing.is_empty(),
            "dvc.yaml stage `{name}` does not list what its binary reaches, so `dvc repro` would call it up to date \
             after these change: {missing:?}"
        );
    }
}

#[test]
fn the_dep_check_sees_a_missing_dep() {
    // train reaches the fold code in src/data and the tracker: a narrower list must be refused.
    let deps: Vec<String> =
        ["src/bin/train.rs", "src/stages", "src/models", "Cargo.lock", "Cargo.toml", "scripts/stage"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let missing = uncovered("train", &deps);
    assert!(missing.iter().any(|f| f.starts_with("src/data/")), "{missing:?}");
    assert!(missing.iter().any(|f| f.starts_with("src/tracking/")), "{missing:?}");
    assert!(missing.contains(&"src/search.rs".to_string()), "{missing:?}");
}
