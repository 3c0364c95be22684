use std::process::ExitCode;

use clap::Parser;

use imapsort::cli::{Cli, Command};
use imapsort::commands;
use imapsort::exit::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    imapsort::logging::init(cli.log_format);
    // Not locked for the whole run: `run` prints from several threads.
    let out = &mut std::io::stdout();
    let result = match &cli.command {
        Command::Check(args) => commands::check::run(args, out),
        Command::Status(args) => commands::status::run(args, out),
        Command::Log(args) => commands::log::run(args, out),
        Command::Undo(args) => commands::undo::run_blocking(args, out),
        Command::Login(args) => commands::login::run(args, out),
        Command::Completions(args) => commands::completions::run(args, out),
        Command::Folders(args) => commands::folders::run(args, out),
        Command::Man => commands::man::run(out),
        Command::Test(args) => commands::test::run(args, out, &mut std::io::stderr().lock()),
        Command::Sweep(args) => commands::sweep::run_blocking(args, out),
        Command::Run(args) => commands::run::run(args),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("imapsort: {err:#}");
            Exit::Software.into()
        }
    }
}
