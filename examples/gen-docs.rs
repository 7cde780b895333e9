//! Generates shell completions and the man page from the clap definition, so
//! they never drift from `--help` and add nothing to the binary:
//!   cargo run --example gen-docs -- target/docs
//! writes r4-exec.bash, _r4-exec (zsh), r4-exec.fish and r4-exec.1;
//!   cargo run --example gen-docs -- --readme
//! rewrites the README's exit-code table from `src/exit.rs` (the man page
//! and `--help` carry it already; `tests/e2e/docs.rs` fails when it drifts).

use clap::CommandFactory;
use clap_complete::{generate_to, Shell};

const BEGIN: &str = "<!-- exit-codes:begin";
const END: &str = "<!-- exit-codes:end -->";

/// Replaces what lies between the exit-code markers of README.md.
fn readme() -> std::io::Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let text = std::fs::read_to_string(path)?;
    let broken = || std::io::Error::other("README.md lacks the exit-code markers");
    let start = text.find(BEGIN).ok_or_else(broken)?;
    let body = start + text[start..].find('\n').ok_or_else(broken)? + 1;
    let end = text.find(END).ok_or_else(broken)?;
    let new = format!(
        "{}{}{}",
        &text[..body],
        r4_exec::exit::markdown(),
        &text[end..]
    );
    std::fs::write(path, new)?;
    println!("{path}");
    Ok(())
}

fn main() -> std::io::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--readme") {
        return readme();
    }
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
