//! The shape of the source tree, held: its top-level modules import each other without a
//! circle (so they stand in layers, each importing only those below it), no file of
//! them is in an import circle, and only the reporter (and the app, for a fatal error
//! and the generated scripts) touches stdout or stderr.
//!
//! `cargo test --test layers -- --nocapture` prints the layers, as docs/design.md
//! draws them. Imports are read as text (`crate::name` in code before its tests), which
//! is how the rule is written: an import that hides from this reading hides from a
//! reader too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The source files under `src/`, by path relative to it (`runner/account.rs`).
fn sources() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
                files.insert(relative, code_before_tests(&std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files
}

/// A file's code without its unit tests (the `#[cfg(test)]` module at its end) and
/// without comments, which may name modules freely.
fn code_before_tests(text: &str) -> String {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
    code.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// `runner/account.rs` → `runner`, `lib.rs` → `app`: the top-level module a file is in.
fn module_of(file: &str) -> String {
    match file.split_once('/') {
        Some((dir, _)) => dir.to_owned(),
        None if file == "lib.rs" || file == "main.rs" => "app".to_owned(),
        None => file.trim_end_matches(".rs").to_owned(),
    }
}

/// Every `crate::a::b…` path a file names, braces expanded one level deep
/// (`crate::a::{b, c::D}` names `a::b` and `a::c::D`), as `["a", "b"]` lists.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        let head: Vec<String> = rest[..end].split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if rest[end..].starts_with('{') {
            let inner = &rest[end + 1..rest[end..].find('}').map_or(rest.len(), |close| end + close)];
            for item in inner.split(',') {
                let mut path = head.clone();
                path.extend(item.trim().split("::").filter(|s| !s.is_empty()).map(str::to_owned));
                paths.push(path);
            }
        } else {
            paths.push(head);
        }
    }
    paths
}

/// The file a path names: its longest prefix that is a source file.
fn file_of(path: &[String], files: &BTreeMap<String, String>) -> Option<String> {
    (1..=path.len()).rev().find_map(|n| {
        let stem = path[..n].join("/");
        [format!("{stem}.rs"), format!("{stem}/mod.rs")].into_iter().find(|f| files.contains_key(f))
    })
}

/// The paths `lib.rs` names without `crate::`: its own modules, by their bare names
/// (`commands::run`), as every crate root does.
fn root_paths(code: &str, files: &BTreeMap<String, String>) -> Vec<Vec<String>> {
    let modules: BTreeSet<String> = files.keys().map(|f| module_of(f)).collect();
    let words = code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'));
    words
        .filter_map(|word| word.split_once("::"))
        .filter(|(head, _)| modules.contains(*head))
        .map(|(head, _)| vec![head.to_owned()])
        .collect()
}

/// Who imports whom, file by file.
fn file_imports(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    files
        .iter()
        .map(|(file, code)| {
            let mut paths = crate_paths(code);
            if file == "lib.rs" {
                paths.extend(root_paths(code, files));
            }
            let targets = paths.iter().filter_map(|p| file_of(p, files)).filter(|t| t != file).collect();
            (file.clone(), targets)
        })
        .collect()
}

/// A circle in `graph`, if there is one (depth-first search, three colours).
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut circle = path[start..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, done, path) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// The floor of each module: 1 for one that imports none, else one above the highest
/// it imports. Only defined without circles.
fn floors(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, usize> {
    fn floor(node: &str, graph: &BTreeMap<String, BTreeSet<String>>, known: &mut BTreeMap<String, usize>) -> usize {
        if let Some(&f) = known.get(node) {
            return f;
        }
        let f = 1 + graph.get(node).into_iter().flatten().map(|n| floor(n, graph, known)).max().unwrap_or(0);
        known.insert(node.to_owned(), f);
        f
    }
    let mut known = BTreeMap::new();
    for node in graph.keys() {
        floor(node, graph, &mut known);
    }
    known
}

#[test]
fn no_file_is_in_an_import_circle() {
    let files = sources();
    let imports = file_imports(&files);
    assert!(imports.values().map(BTreeSet::len).sum::<usize>() > 50, "the reading found the imports: {imports:?}");
    assert_eq!(find_circle(&imports), None, "an import circle between files");
}

#[test]
fn the_top_level_modules_stand_in_layers() {
    let files = sources();
    let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, targets) in file_imports(&files) {
        let from = module_of(&file);
        let entry = modules.entry(from.clone()).or_default();
        entry.extend(targets.iter().map(|t| module_of(t)).filter(|m| *m != from));
    }
    assert_eq!(find_circle(&modules), None, "an import circle between top-level modules");
    let floors = floors(&modules);
    let mut by_floor: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (module, floor) in &floors {
        by_floor.entry(*floor).or_default().push(module);
    }
    let imports: usize = modules.values().map(BTreeSet::len).sum();
    println!("{} files, {} top-level modules, {imports} imports between them, no circle", files.len(), floors.len());
    for (floor, modules) in by_floor.iter().rev() {
        println!("floor {floor:2}: {}", modules.join(", "));
    }
    // The ends of the house: the app on top, the leaves at the bottom.
    assert_eq!(by_floor.values().last().unwrap(), &vec!["app"]);
    for leaf in ["text", "stop", "files", "limits", "exit_code", "outcome"] {
        assert_eq!(floors[leaf], 1, "{leaf} imports nothing of fanout's: {:?}", modules[leaf]);
    }
    // The runner and the reporter meet in the events, never directly upward.
    assert!(!modules["reporter"].contains("runner"), "the reporter knows no runner");
    for stage in ["portal", "token", "login", "credentials", "exec", "regions", "cache", "config", "template"] {
        assert!(!modules[stage].contains("runner"), "{stage} imports the runner");
        assert!(!modules[stage].contains("commands"), "{stage} imports a command");
    }
}

#[test]
fn only_the_reporter_and_the_app_touch_stdout_and_stderr() {
    let touches = |code: &str| {
        code.lines().any(|line| {
            let writes = ["io::stdout()", "io::stderr()", "print!(", "println!(", "eprint!(", "eprintln!("];
            writes.iter().any(|w| line.contains(w)) && !line.contains("is_terminal()")
        })
    };
    let writers: Vec<PathBuf> = sources()
        .iter()
        .filter(|(file, code)| touches(code) && !file.starts_with("reporter/") && *file != "lib.rs")
        .map(|(file, _)| PathBuf::from(file))
        .collect();
    assert!(writers.is_empty(), "these write to stdout or stderr themselves: {writers:?}");
}

#[test]
fn the_reading_finds_what_it_must() {
    let paths = crate_paths("use crate::a::{b, c::D};\nlet x = crate::e::f(1);");
    assert_eq!(paths, [vec!["a", "b"], vec!["a", "c", "D"], vec!["e", "f"]]);
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(find_circle(&graph), Some(vec!["a".to_owned(), "b".to_owned(), "a".to_owned()]));
    assert_eq!(module_of("runner/account.rs"), "runner");
    assert_eq!(
        code_before_tests("use crate::x;\n// crate::y\n#[cfg(test)]\nmod tests { use crate::z; }"),
        "use crate::x;"
    );
}
