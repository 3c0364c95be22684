use std::process::ExitCode;

use clap::Parser;

use imapsort::cli::{Cli, Command};
use imapsort::commands;
use imapsort::exit::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    imapsort::logging::init(cli.log_format);
    let mut stdout = std::io::stdout().lock();
    let code = match cli.command {
        Command::Completions(args) => commands::completions::run(&args, &mut stdout),
        Command::Man => commands::man::run(&mut stdout),
        _ => {
            eprintln!("imapsort: not implemented yet");
            Exit::Software
        }
    };
    code.into()
}
