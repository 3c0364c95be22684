use std::process::ExitCode;

use clap::Parser;

use imapsort::cli::Cli;
use imapsort::exit::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = cli;
    eprintln!("imapsort: not implemented yet");
    Exit::Software.into()
}
