//! Golden tests: every broken file under `tests/config/` against the diagnostics it must give.
//!
//! For `NAME.yaml` the expected output of `imapsort check` (every diagnostic, then the summary)
//! is in `NAME.expected`. On a mismatch the actual output is written to `NAME.actual`, so
//! `diff tests/config/NAME.expected tests/config/NAME.actual` shows what changed.

use std::fs;
use std::path::{Path, PathBuf};

use imapsort::commands::check::summary;
use imapsort::config;

/// What `check` prints for a file, read through `load_str` so that the result does not depend
/// on the fixture's permission bits.
fn check_output(name: &str, text: &str) -> String {
    let path = Path::new(name);
    let diagnostics = match config::load_str(text, path) {
        Ok(c) => c.warnings,
        Err(e) => e.diagnostics(),
    };
    let mut out = String::new();
    for d in &diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out.push_str(&summary(path, &diagnostics));
    out.push('\n');
    out
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/config exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn broken_files_give_their_expected_diagnostics() {
    let mut failures = Vec::new();
    let files = fixtures();
    assert!(files.len() >= 10, "fixtures missing: {files:?}");
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&file).unwrap();
        let actual = check_output(&name, &text);
        let expected_path = file.with_extension("expected");
        let actual_path = file.with_extension("actual");
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {
                let _ = fs::remove_file(&actual_path);
            }
            _ => {
                fs::write(&actual_path, &actual).unwrap();
                failures.push(name);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "output differs from .expected (see the .actual files): {failures:?}"
    );
}

/// Diagnostics come sorted by place, whatever order the validator found them in.
#[test]
fn diagnostics_are_sorted_by_place() {
    for file in fixtures() {
        let text = fs::read_to_string(&file).unwrap();
        let diagnostics = match config::load_str(&text, &file) {
            Ok(c) => c.warnings,
            Err(e) => e.diagnostics(),
        };
        let places: Vec<_> = diagnostics.iter().map(|d| d.span).collect();
        let mut sorted = places.clone();
        sorted.sort();
        assert_eq!(places, sorted, "{}", file.display());
    }
}

/// A literal password must never reach a diagnostic, whatever is wrong around it.
#[test]
fn literal_password_never_appears_in_diagnostics() {
    let secret = "Pa55-w0rd-literal";
    let texts = [
        format!(
            "accounts:\n  - {{ name: a, host: h, username: u, password: {secret}, port: x }}\n"
        ),
        format!("accounts:\n  - name: a\n    password: {secret}\n    pasword: {secret}\n"),
        format!(
            "accounts:\n  - {{ name: 'bad name', host: h, username: u, password: \"{secret}\" }}\n"
        ),
        format!(
            "accounts:\n  - {{ name: a, host: h, username: u, password: {secret} }}\n  - {{ name: a, host: h, username: u, password: {secret} }}\n"
        ),
    ];
    for text in &texts {
        let err = config::load_str(text, Path::new("c.yaml")).unwrap_err();
        assert!(!err.diagnostics().is_empty());
        for shown in [format!("{err}"), format!("{err:?}")] {
            assert!(!shown.contains(secret), "secret leaked: {shown}");
        }
    }
}

/// `password: {hunter2}` is a map whose key is the secret: the message must not repeat it.
#[test]
fn password_typed_as_map_key_is_not_repeated() {
    let text = "accounts:\n  - { name: a, host: h, username: u, password: { Hunter2-Key } }\n";
    let err = config::load_str(text, Path::new("c.yaml")).unwrap_err();
    let shown = format!("{err}\n{err:?}");
    assert!(shown.contains("password: unknown key"), "{shown}");
    assert!(!shown.contains("Hunter2"), "{shown}");
}
