//! The exit-code table exists once, in `src/exit.rs`; `--help`, the man page
//! and the README carry generated copies. These tests fail when one drifts
//! (regenerate the README's with `cargo run --example gen-docs -- --readme`).

use clap::CommandFactory;

#[test]
fn the_readme_exit_code_table_is_the_generated_one() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme.find("<!-- exit-codes:begin").expect("begin marker");
    let body = start + readme[start..].find('\n').expect("marker line") + 1;
    let end = readme.find("<!-- exit-codes:end -->").expect("end marker");
    assert_eq!(
        &readme[body..end],
        r4_exec::exit::markdown(),
        "README.md's exit codes drifted: run `cargo run --example gen-docs -- --readme`"
    );
}

#[test]
fn the_man_page_and_help_carry_every_exit_code() {
    let mut man = Vec::new();
    clap_mangen::Man::new(r4_exec::cli::Cli::command())
        .render(&mut man)
        .expect("man page");
    let man = String::from_utf8(man).expect("utf-8");
    let help = r4_exec::cli::Cli::command().render_long_help().to_string();
    for (code, meaning) in r4_exec::exit::TABLE {
        let line = format!("{code}  {meaning}");
        assert!(help.contains(&line), "--help lacks {line:?}");
        // roff escapes '-' as '\-'.
        assert!(
            man.replace("\\-", "-").contains(&line),
            "the man page lacks {line:?}"
        );
    }
}

/// docs/security.md carries the families of names a vault writer may not
/// choose exactly as `src/hygiene.rs` defines them.
#[test]
fn the_security_doc_carries_the_hygiene_table() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/security.md")).unwrap();
    let section = &doc[doc
        .find("| family | why a vault writer may not set it |")
        .unwrap()..];
    let documented: Vec<&str> = section
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .map(|l| l.trim_start_matches("| `").split('`').next().unwrap())
        .collect();
    let code: Vec<&str> = r4_exec::hygiene::families().collect();
    assert_eq!(documented, code, "docs/security.md's families");
}
