//! The rules engine. PURE: no tokio, no async-imap, no I/O.
//!
//! (Placeholder: the compiled RuleSet, MessageView and evaluation land here.)

pub mod ast;
pub mod plan;

pub use plan::{FinalAction, FinalKind, Plan};

/// A compiled rule set. (Placeholder until the engine lands.)
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<ast::Rule>,
}

/// An error found while compiling a rule (an invalid regex, an unknown template variable).
#[derive(Clone, Debug, PartialEq)]
pub struct CompileError {
    pub span: ast::Span,
    /// The rule's name.
    pub rule: String,
    pub message: String,
}

impl RuleSet {
    /// Compile the rules; every error of every rule is returned at once.
    pub fn compile(rules: Vec<ast::Rule>) -> Result<RuleSet, Vec<CompileError>> {
        Ok(RuleSet { rules })
    }

    /// The rules as written, in file order.
    pub fn rules(&self) -> impl Iterator<Item = &ast::Rule> {
        self.rules.iter()
    }
}
