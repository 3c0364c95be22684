//! `imapsort check`: validate the configuration file, print every error and warning, then a
//! one-line summary. All of it goes to stdout: it is the command's output.

use std::io::Write;

use crate::cli::CheckArgs;
use crate::config::{self, Diagnostic};
use crate::exit::Exit;

/// Exit 0 when the file is valid (warnings allowed), 78 when it is invalid or unreadable.
pub fn run(args: &CheckArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let path = config::resolve_path(args.config.config.as_deref());
    let (diagnostics, exit) = match config::load(&path) {
        Ok(config) => (config.warnings, Exit::Ok),
        Err(err) => (err.diagnostics(), Exit::Config),
    };
    for d in &diagnostics {
        writeln!(out, "{d}")?;
    }
    writeln!(out, "{}", summary(&path, &diagnostics))?;
    out.flush()?;
    Ok(exit)
}

/// `FILE: ok (N warnings)` or `FILE: N errors, M warnings`.
pub fn summary(path: &std::path::Path, diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let warnings = plural(warnings, "warning");
    if errors == 0 {
        format!("{}: ok ({warnings})", path.display())
    } else {
        format!(
            "{}: {}, {warnings}",
            path.display(),
            plural(errors, "error")
        )
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;
    use std::path::{Path, PathBuf};

    fn diag(severity: Severity) -> Diagnostic {
        Diagnostic {
            severity,
            file: PathBuf::from("c.yaml"),
            span: None,
            rule: None,
            account: None,
            message: String::new(),
        }
    }

    #[test]
    fn summaries() {
        let (e, w) = (diag(Severity::Error), diag(Severity::Warning));
        let cases = [
            (vec![], "c.yaml: ok (0 warnings)"),
            (vec![w.clone()], "c.yaml: ok (1 warning)"),
            (vec![w.clone(), w.clone()], "c.yaml: ok (2 warnings)"),
            (vec![e.clone()], "c.yaml: 1 error, 0 warnings"),
            (
                vec![e.clone(), e.clone(), w.clone()],
                "c.yaml: 2 errors, 1 warning",
            ),
        ];
        for (diags, want) in cases {
            assert_eq!(summary(Path::new("c.yaml"), &diags), want);
        }
    }
}
