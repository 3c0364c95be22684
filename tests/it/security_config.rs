//! Hostile configuration files: an alias bomb ("billion laughs"), nesting thousands deep, a
//! megabyte-long key, and tags that other YAML loaders act on (`!include`, `!!python/...`).
//! Each is refused (or read as plain data) promptly, with a diagnostic, and no file named in
//! it is read.

use std::path::Path;
use std::time::{Duration, Instant};

/// Generous for a debug build on a shared machine (the alias bomb takes ~4 s there to hit the
/// parser's node budget); an exponential expansion would take hours.
const BOUND: Duration = Duration::from_secs(30);

fn load_bounded(text: String) -> (Result<imapsort::config::Config, String>, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::Builder::new()
        // The parser must not need a big stack either; a small one makes recursion show.
        .stack_size(8 << 20)
        .spawn(move || {
            let r = imapsort::config::load_str(&text, Path::new("/hostile/config.yaml"))
                .map_err(|e| e.to_string());
            let _ = tx.send(r);
        })
        .unwrap();
    let r = rx
        .recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("loading took longer than {BOUND:?}"));
    (r, started.elapsed())
}

#[test]
fn an_alias_bomb_is_refused_promptly() {
    // Ten levels of ten aliases each: 10^10 nodes if expanded.
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str("rules: *a9\n");
    let (r, took) = load_bounded(text);
    let err = r.expect_err("an alias bomb is not a valid configuration");
    assert!(err.contains("/hostile/config.yaml"), "{err}");
    eprintln!("alias bomb refused in {took:?}: {err}");
}

#[test]
fn nesting_thousands_deep_is_refused_without_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("{a: ", "}"), ("- ", "")] {
        let depth = 5000;
        let text = if close.is_empty() {
            // Block sequences: each level indented one more.
            let mut t = String::from("rules:\n");
            for i in 0..depth {
                t.push_str(&" ".repeat(i + 2));
                t.push_str(open);
                t.push('\n');
            }
            t
        } else {
            format!("rules: {}x{}\n", open.repeat(depth), close.repeat(depth))
        };
        let (r, _) = load_bounded(text);
        assert!(r.is_err(), "{open}: nesting 5000 deep was accepted");
    }
}

#[test]
fn include_and_language_tags_read_no_file_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("included.yaml");
    std::fs::write(&marker, "- name: from the included file\n").unwrap();
    for tag in [
        format!("!include {}", marker.display()),
        "!!python/object/apply:os.system [\"touch /tmp/imapsort-pwned\"]".to_string(),
        "!!binary aGVsbG8=".to_string(),
    ] {
        let text = format!("rules: {tag}\n");
        let (r, _) = load_bounded(text);
        match r {
            Ok(c) => assert!(c.rules.is_empty(), "{tag}: rules came from somewhere"),
            Err(e) => assert!(!e.contains("from the included file"), "{tag}: {e}"),
        }
    }
    assert!(!Path::new("/tmp/imapsort-pwned").exists());
}

#[test]
fn a_megabyte_key_and_a_megabyte_value_are_reported_without_echoing_them_whole() {
    let long = "k".repeat(1 << 20);
    let text = format!(
        "settings:\n  {long}: 1\n  state_dir: '{}'\n",
        "v".repeat(1 << 20)
    );
    let (r, took) = load_bounded(text);
    let err = r.expect_err("an unknown key");
    assert!(
        err.len() < 64 * 1024,
        "a {} byte diagnostic for a megabyte key",
        err.len()
    );
    assert!(took < BOUND);
}
