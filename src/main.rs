//! The `r4-exec` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = r4_exec::cli::Cli::parse();
    match r4_exec::run::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            for line in err.lines() {
                eprintln!("r4-exec: {line}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
