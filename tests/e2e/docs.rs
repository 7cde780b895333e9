//! The exit-code table exists once, in `src/exit.rs`; `--help`, the man page
//! and the README carry generated copies. These tests fail when one drifts
//! (regenerate the README's with `cargo run --example gen-docs -- --readme`).

use std::path::{Path, PathBuf};

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

/// The static binary's size (and its budget) is stated in one place,
/// BENCHMARKS.md ("Static binary size", with `packaging/build-static.sh`,
/// which prints it): every other document links there, so no copy of the
/// number goes stale. CHANGELOG.md is history and may name old sizes.
#[test]
fn only_benchmarks_states_the_static_binary_size() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    markdown_files(root, &mut files);
    let mut stated = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(root).unwrap();
        if rel == Path::new("BENCHMARKS.md") || rel == Path::new("CHANGELOG.md") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (size, context) in static_sizes(&text) {
            stated.push(format!("{}: {size:?} in {context:?}", rel.display()));
        }
    }
    assert!(
        files.iter().any(|f| f.ends_with("docs/install.md")),
        "the walk found no docs: {files:?}"
    );
    assert!(
        stated.is_empty(),
        "the static binary's size is stated in BENCHMARKS.md only (\"Static binary size\"); \
         link there instead:\n{}",
        stated.join("\n")
    );
}

/// The check above finds a size however it is written, and only near
/// "static" or "binary".
#[test]
fn the_static_size_check_finds_each_way_a_size_is_written() {
    let found =
        |text: &str| -> Vec<String> { static_sizes(text).into_iter().map(|(s, _)| s).collect() };
    for (text, size) in [
        (
            "| static binary | fully static, about 5.9 MiB; ship it |",
            "5.9 MiB",
        ),
        ("the static binary is 6,182,704 bytes.", "6,182,704 bytes"),
        (
            "```console\n$ packaging/build-static.sh\nsize: 6279280 bytes (budget 6291456)\n```",
            "6279280 bytes",
        ),
        (
            "`AWS_LC_SYS_SMALL=0 packaging/build-static.sh` builds the fast variant (about 7.4 MB)",
            "7.4 MB",
        ),
        (
            "The static build leaves it out to fit its 6 MiB budget.",
            "6 MiB",
        ),
        (
            "for `FROM scratch`, 6\u{a0}MiB budget). The static one needs no libc",
            "6\u{a0}MiB",
        ),
        (
            "The binary is built by the script.\nIt is 6291152 B now.",
            "6291152 B",
        ),
        ("the release binary, 6.6MB", "6.6MB"),
    ] {
        assert_eq!(found(text), [size], "{text:?}");
    }
    let far = format!(
        "answers up to 256 KiB are read whole;{} the static build is in BENCHMARKS.md",
        " and so on".repeat(16)
    );
    for text in [
        "A value over 128 KiB cannot be an environment variable.",
        &far,
        "values of 4 bytes or more are masked.\n\nThe static binary is in BENCHMARKS.md.",
        "- the copy is at most 64 MiB\n- a static binary",
        "| 1 MiB cap | x |\n| static | binary |",
        "sha256 bytes of the static binary",
    ] {
        assert!(found(text).is_empty(), "{text:?}: {:?}", found(text));
    }
}

/// Every `*.md` under `dir`, skipping build output and hidden directories.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
    out.sort();
}

/// The sizes (`5.9 MiB`, `6,182,704 bytes`, `7.4 MB`) that `markdown` states
/// within [`NEAR`] characters of "static" or "binary" in the same block, each
/// with that context.
fn static_sizes(markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for block in blocks(markdown) {
        for (start, end) in sizes(&block) {
            let from = char_floor(&block, start.saturating_sub(NEAR));
            let to = char_floor(&block, (end + NEAR).min(block.len()));
            let context = &block[from..to];
            let lower = context.to_lowercase();
            if lower.contains("static") || lower.contains("binary") {
                out.push((block[start..end].to_owned(), context.replace('\n', " ")));
            }
        }
    }
    out
}

/// How close (in bytes) "static" or "binary" must be to a size.
const NEAR: usize = 160;

fn char_floor(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Units a size is written in, longest first.
const UNITS: &[&str] = &[
    "kilobytes",
    "megabytes",
    "bytes",
    "byte",
    "KiB",
    "MiB",
    "GiB",
    "KB",
    "kB",
    "MB",
    "GB",
    "B",
];

/// Byte ranges of `<number> <unit>` in `text`: digits (with `,` `.` `_`
/// between them), an optional space (or no-break space), a unit of
/// [`UNITS`] not followed by a letter or digit; the number not preceded by
/// a letter, digit or `.`.
fn sizes(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'));
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i;
        while j < b.len()
            && (b[j].is_ascii_digit()
                || (matches!(b[j], b',' | b'.' | b'_')
                    && b.get(j + 1).is_some_and(u8::is_ascii_digit)))
        {
            j += 1;
        }
        let number_end = j;
        let rest = &text[j..];
        let rest = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('\u{a0}'))
            .unwrap_or(rest);
        let unit_at = text.len() - rest.len();
        let unit = UNITS.iter().find(|u| {
            rest.starts_with(**u)
                && !rest[u.len()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphanumeric)
        });
        if let Some(u) = unit {
            out.push((start, unit_at + u.len()));
            i = unit_at + u.len();
        } else {
            i = number_end;
        }
    }
    out
}

/// `markdown` in blocks: a paragraph, a list item, a heading, a table row, or
/// a whole fenced code block (a command and what it printed).
fn blocks(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut fenced = false;
    let flush = |current: &mut Vec<&str>, out: &mut Vec<String>| {
        if !current.is_empty() {
            out.push(current.join("\n"));
            current.clear();
        }
    };
    for line in markdown.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            if !fenced {
                flush(&mut current, &mut out);
            }
            current.push(line);
            if fenced {
                flush(&mut current, &mut out);
            }
            fenced = !fenced;
            continue;
        }
        if fenced {
            current.push(line);
            continue;
        }
        let list_item = t.starts_with("- ")
            || t.starts_with("* ")
            || t.starts_with("+ ")
            || t.split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
        if t.is_empty() {
            flush(&mut current, &mut out);
        } else if t.starts_with('|') || t.starts_with('#') {
            flush(&mut current, &mut out);
            out.push(line.to_owned());
        } else {
            if list_item {
                flush(&mut current, &mut out);
            }
            current.push(line);
        }
    }
    flush(&mut current, &mut out);
    out
}

/// Under each version of CHANGELOG.md, each kind of change (`### Added`,
/// `### Fixed`, …) has one heading.
#[test]
fn the_changelog_has_one_heading_per_kind_and_version() {
    let log =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/CHANGELOG.md")).unwrap();
    let mut version = "";
    let mut seen: Vec<&str> = Vec::new();
    for line in log.lines() {
        if let Some(v) = line.strip_prefix("## ") {
            version = v;
            seen.clear();
        } else if let Some(kind) = line.strip_prefix("### ") {
            assert!(
                !seen.contains(&kind),
                "CHANGELOG.md: \"### {kind}\" twice under \"## {version}\": merge them"
            );
            seen.push(kind);
        }
    }
}
