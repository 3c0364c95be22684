//! The shape of the source: the map at the top of src/lib.rs names every room, and each room
//! imports only rooms the map lists below it, so there are no import circles. Read from the
//! files themselves: every `crate::ROOM` a room's non-test code names is an import of ROOM.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The rooms of the map in lib.rs, top to bottom (`main.rs` left out: it is not a module).
fn map_order(lib: &str) -> Vec<String> {
    let start = lib.find("//! # The map").expect("lib.rs has a map");
    let block = lib[start..]
        .split("//! ```text\n")
        .nth(1)
        .and_then(|b| b.split("//! ```").next())
        .expect("the map is a text block");
    block
        .lines()
        .filter_map(|l| l.strip_prefix("//! "))
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "main.rs")
        .map(str::to_owned)
        .collect()
}

/// The modules lib.rs declares.
fn declared(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|l| {
            let l = l
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

/// `text` without comments, string contents and a trailing `#[cfg(test)] mod tests`.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push('"');
            }
            // A char literal holding a quote would open a string: skip it whole.
            '\'' if chars.peek() == Some(&'"') => {
                chars.next();
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn the_map_names_every_room_once() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let order = map_order(&lib);
    let listed: BTreeSet<String> = order.iter().cloned().collect();
    assert_eq!(listed.len(), order.len(), "a room listed twice: {order:?}");
    assert_eq!(
        listed,
        declared(&lib),
        "the map and lib.rs's modules differ"
    );
}

#[test]
fn rooms_import_only_rooms_below_them() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let order = map_order(&lib);
    let place = |room: &str| order.iter().position(|r| r == room);
    // Each room's imports of other rooms, from the paths its files name.
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in files() {
        let Some(room) = module.first() else { continue };
        let imported = edges.entry(room.clone()).or_default();
        for path in paths(&code, &module) {
            if let Some(other) = path.first().filter(|other| *other != room) {
                imported.insert(other.clone());
            }
        }
    }
    let mut wrong = Vec::new();
    for (room, imported) in edges {
        let Some(here) = place(&room) else {
            wrong.push(format!("{room} is not on the map"));
            continue;
        };
        for other in imported {
            match place(&other) {
                Some(there) if there > here => {}
                Some(_) => wrong.push(format!(
                    "{room} imports {other}, which the map puts above it"
                )),
                None => wrong.push(format!("{room} imports {other}, which is not on the map")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every non-test file under src/ as a module path (`["pass", "sink"]`; `[]` for lib.rs) with
/// its code.
fn files() -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut stack = vec![src()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
                continue;
            }
            let rel = path.strip_prefix(src()).unwrap().with_extension("");
            let mut module: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            if name == "main.rs" && module.is_empty() {
                continue; // the binary: it imports the library by name
            }
            out.push((module, code(&std::fs::read_to_string(&path).unwrap())));
        }
    }
    out
}

/// The paths `code` names from `crate::` or `super::`, made absolute for a file of `module`.
fn paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        for (i, _) in code.match_indices(start) {
            if code[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            {
                continue;
            }
            let base: Vec<String> = if start == "crate::" {
                Vec::new()
            } else {
                module[..module.len().saturating_sub(1)].to_vec()
            };
            let rest = &code[i + start.len()..];
            let path_chars = |s: &str| -> String {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect()
            };
            let path = path_chars(rest);
            // `a::b::{c, d::e}`: one path per item of the group.
            let items: Vec<String> = match rest[path.len()..].strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|item| format!("{path}{}", path_chars(item.trim())))
                    .collect(),
                None => vec![path],
            };
            for item in items {
                let mut full = base.clone();
                full.extend(
                    item.split("::")
                        .filter(|p| !p.is_empty() && *p != "self")
                        .map(str::to_owned),
                );
                out.push(full);
            }
        }
    }
    out
}

/// No two files import each other, directly or around a loop (a child naming its parent's
/// items with `super::` is not an import: the parent owns the child).
#[test]
fn no_file_imports_circle() {
    let files = files();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, code) in &files {
        for path in paths(code, module) {
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p));
            if let Some(target) = target
                && target != *module
                && !module.starts_with(&target)
            {
                graph.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    // A depth-first search that reports the first loop it finds.
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut circle = path[i..].to_vec();
            circle.push(node.clone());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(circle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            let names: Vec<String> = circle.iter().map(|m| m.join("/")).collect();
            panic!("import circle: {}", names.join(" -> "));
        }
    }
}

/// The reader itself: what counts as an import and what does not.
#[test]
fn imports_are_read_from_code_not_from_comments_or_strings() {
    let text = "use crate::{pass::Sink, state};\n\
                use super::diag::Diags;\n\
                /// [`crate::daemon`] is only a doc link\n\
                let s = \"crate::commands\"; let q = '\"';\n\
                let e = crate::logging::chain(&e); // crate::cli\n\
                #[cfg(test)]\nmod tests { use crate::exit; }\n";
    let module = ["config".to_owned(), "accounts".to_owned()];
    let found: Vec<String> = paths(&code(text), &module)
        .iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(
        found,
        [
            "pass::Sink",
            "state",
            "logging::chain",
            "config::diag::Diags"
        ]
    );
}
