//! The configuration file: YAML -> spanned node tree -> validated [`Config`].
//!
//! (Placeholder: the loader lands here.)

pub mod secret;
pub mod types;

pub use types::{Account, AuthMechanism, Config, FirstStart, SecretSource, Settings, TlsMode};

use std::path::PathBuf;

use crate::rules::ast::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One error or warning about a configuration file, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// `None` for problems of the file as a whole (unreadable, permissions).
    pub span: Option<Span>,
    /// The rule (or account) the problem is in, when there is one.
    pub rule: Option<String>,
    pub message: String,
}
