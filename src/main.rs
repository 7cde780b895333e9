//! The `r4-exec` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

/// Every heap block is zeroed before it is freed, so a copy of a value or
/// of the API key made by any crate is gone once dropped, not left in
/// freed memory for as long as r4-exec runs (see `r4_exec::wipe`).
#[global_allocator]
static ALLOCATOR: r4_exec::wipe::ZeroOnFree = r4_exec::wipe::ZeroOnFree;

fn main() -> ExitCode {
    // Before the first allocation of any size (see the function).
    r4_exec::wipe::tune_heap();
    // Supervisor mode re-executes this binary as the holder of file secrets.
    let mut args = std::env::args_os();
    if r4_exec::deliver::holder::invoked_as_holder(args.next().as_deref()) {
        return ExitCode::from(r4_exec::deliver::holder::serve(&args.collect::<Vec<_>>()));
    }
    // Usage errors exit 64 like every other usage error (clap's own is 2);
    // --help and --version exit 0.
    let cli = match r4_exec::cli::parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 64 } else { 0 });
        }
    };
    let outcome = r4_exec::invocation::Invocation::from_cli(cli).and_then(r4_exec::run::run);
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            for line in err.lines() {
                r4_exec::ui::line(&line);
            }
            ExitCode::from(err.exit_code())
        }
    }
}
