//! One module per subcommand. Each takes its parsed arguments and writers, and returns the
//! process exit code; only `main` turns that into a process exit.

pub mod check;
pub mod completions;
pub mod folders;
pub mod log;
pub mod login;
pub mod man;
pub mod run;
pub mod status;
pub mod sweep;
pub mod test;
pub mod undo;
