//! Generates shell completions and the man page from the clap definition, so
//! they never drift from `--help` and add nothing to the binary:
//!   cargo run --example gen-docs -- target/docs
//! writes r4-exec.bash, _r4-exec (zsh), r4-exec.fish and r4-exec.1.

use clap::CommandFactory;
use clap_complete::{generate_to, Shell};

fn main() -> std::io::Result<()> {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/docs".into()),
    );
    std::fs::create_dir_all(&out)?;
    let mut cmd = r4_exec::cli::Cli::command();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = generate_to(shell, &mut cmd, "r4-exec", &out)?;
        println!("{}", path.display());
    }
    let man = out.join("r4-exec.1");
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    std::fs::write(&man, buf)?;
    println!("{}", man.display());
    Ok(())
}
