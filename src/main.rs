use std::process::ExitCode;

use clap::Parser;

use imapsort::cli::{Cli, Command};
use imapsort::exit::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => imapsort::commands::check::run(args, &mut std::io::stdout().lock()),
        _ => {
            eprintln!("imapsort: not implemented yet");
            return Exit::Software.into();
        }
    };
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("imapsort: {err:#}");
            Exit::Software.into()
        }
    }
}
