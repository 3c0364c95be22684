//! Diagnostics: one error or warning with its place, and the collector the validator fills.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::rules::ast::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One error or warning about a configuration file, with its place.
///
/// Displayed as `FILE:LINE:COLUMN: error: rule "NAME": MESSAGE` (or `account "NAME": `, or no
/// such part outside rules and accounts; `FILE: error: MESSAGE` without a place).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Errors make loading fail; warnings are reported and the file is used.
    pub severity: Severity,
    /// The configuration file, as given on the command line.
    pub file: PathBuf,
    /// `None` for problems of the file as a whole (unreadable).
    pub span: Option<Span>,
    /// The rule the problem is in, when there is one, so the user finds it by name.
    pub rule: Option<String>,
    /// The account the problem is in, when there is one (and it is not in a rule).
    pub account: Option<String>,
    /// What is wrong, in lowercase words; never holds a secret.
    pub message: String,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(span) = self.span {
            write!(f, ":{}:{}", span.line, span.column)?;
        }
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {level}: ")?;
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule:?}: ")?;
        } else if let Some(account) = &self.account {
            write!(f, "account {account:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Collects diagnostics while the file is validated; knows the rule or account being read.
#[derive(Debug)]
pub(crate) struct Diags {
    /// Copied into every diagnostic.
    file: PathBuf,
    /// Everything found so far, in the order found (sorted at the end).
    pub list: Vec<Diagnostic>,
    /// The rule being read, if its name is known.
    rule: Option<String>,
    /// The account being read, if its name is known.
    account: Option<String>,
}

impl Diags {
    pub fn new(file: &Path) -> Self {
        Diags {
            file: file.to_path_buf(),
            list: Vec::new(),
            rule: None,
            account: None,
        }
    }

    /// Following diagnostics are about this rule (or no rule).
    pub fn set_rule(&mut self, rule: Option<String>) {
        self.rule = rule;
    }

    /// Following diagnostics are about this account (or no account).
    pub fn set_account(&mut self, account: Option<String>) {
        self.account = account;
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.push(Severity::Error, Some(span), message.into());
    }

    pub fn warning(&mut self, span: Span, message: impl Into<String>) {
        self.push(Severity::Warning, Some(span), message.into());
    }

    /// A diagnostic about a named rule, whatever rule is being read now.
    pub fn push_for_rule(&mut self, severity: Severity, span: Span, rule: &str, message: String) {
        self.list.push(Diagnostic {
            severity,
            file: self.file.clone(),
            span: Some(span),
            rule: Some(rule.to_owned()),
            account: None,
            message,
        });
    }

    fn push(&mut self, severity: Severity, span: Option<Span>, message: String) {
        self.list.push(Diagnostic {
            severity,
            file: self.file.clone(),
            span,
            rule: self.rule.clone(),
            account: self.account.clone(),
            message,
        });
    }

    pub fn error_count(&self) -> usize {
        self.list.iter().filter(|d| d.is_error()).count()
    }

    /// All diagnostics sorted by place (file-wide ones first); equal places keep their order.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|d| d.span);
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_formats() {
        let base = Diagnostic {
            severity: Severity::Error,
            file: PathBuf::from("c.yaml"),
            span: Some(Span { line: 3, column: 7 }),
            rule: None,
            account: None,
            message: "bad".into(),
        };
        let cases = [
            (base.clone(), "c.yaml:3:7: error: bad"),
            (
                Diagnostic {
                    rule: Some("r 1".into()),
                    account: Some("a".into()),
                    ..base.clone()
                },
                "c.yaml:3:7: error: rule \"r 1\": bad",
            ),
            (
                Diagnostic {
                    account: Some("a".into()),
                    severity: Severity::Warning,
                    ..base.clone()
                },
                "c.yaml:3:7: warning: account \"a\": bad",
            ),
            (
                Diagnostic {
                    span: None,
                    ..base.clone()
                },
                "c.yaml: error: bad",
            ),
        ];
        for (diag, want) in cases {
            assert_eq!(diag.to_string(), want);
        }
    }
}
