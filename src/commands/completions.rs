//! `imapsort completions SHELL`: a completion script generated from the clap definitions.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit::Exit;

/// Writes the script for `args.shell` to `out`.
pub fn run(args: &CompletionsArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "imapsort", out);
    out.flush()?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use clap_complete::Shell;

    use super::*;

    /// The Debian package ships docs/completions/; they must match what the binary prints.
    #[test]
    fn the_shipped_scripts_are_current() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/completions/");
        for (shell, file) in [
            (Shell::Bash, "imapsort.bash"),
            (Shell::Zsh, "_imapsort"),
            (Shell::Fish, "imapsort.fish"),
        ] {
            let shipped = std::fs::read_to_string(format!("{dir}{file}")).unwrap();
            let mut out = Vec::new();
            run(&CompletionsArgs { shell }, &mut out).unwrap();
            assert!(
                shipped.as_bytes() == out.as_slice(),
                "docs/completions/{file} is stale: run `cargo run -- completions {shell} > docs/completions/{file}`"
            );
        }
    }

    #[test]
    fn every_shell_gets_a_script_naming_every_subcommand() {
        let subcommands: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        assert_eq!(
            subcommands,
            [
                "check",
                "test",
                "sweep",
                "run",
                "folders",
                "status",
                "log",
                "undo",
                "login",
                "completions",
                "man"
            ]
        );
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            assert_eq!(run(&CompletionsArgs { shell }, &mut out).unwrap(), Exit::Ok);
            let script = String::from_utf8(out).unwrap();
            for name in &subcommands {
                assert!(script.contains(name.as_str()), "{shell}: {name} missing");
            }
            assert!(
                script.contains("log-format"),
                "{shell}: global option missing"
            );
        }
    }
}
