//! The layers drawn in `src/lib.rs`, enforced: no module of the library
//! names a module of its own layer or of a layer above it (`crate::x` in
//! code, `use crate::{x, …}` groups). Comments and `#[cfg(test)]` modules
//! are not read. The drawing is the one source of the rule: this test reads
//! it, so a new module needs a place there, or this test fails.

use std::collections::BTreeMap;
use std::path::Path;

/// The layers of the drawing in `lib`'s doc comment, bottom first: each
/// line of the ```text block that starts with a name lists one layer's
/// modules, up to the first two spaces; lines that start with a space
/// continue a comment.
fn layers(lib: &str) -> Vec<Vec<String>> {
    let drawing: Vec<&str> = lib
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .skip_while(|l| *l != "```text")
        .skip(1)
        .take_while(|l| *l != "```")
        .collect();
    let mut layers: Vec<Vec<String>> = drawing
        .iter()
        .filter(|l| !l.is_empty() && !l.starts_with(' '))
        .map(|l| {
            let names = l.split("  ").next().unwrap_or("");
            names.split(' ').map(str::to_owned).collect()
        })
        .collect();
    layers.reverse();
    layers
}

fn drawn() -> Vec<Vec<String>> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
    let layers = layers(&std::fs::read_to_string(lib).unwrap());
    assert!(layers.len() > 5, "no drawing found in src/lib.rs");
    layers
}

fn rank(layers: &[Vec<String>], module: &str) -> Option<usize> {
    layers
        .iter()
        .position(|layer| layer.iter().any(|m| m == module))
}

/// The code of a file without comments and without its test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::x` the code names.
fn named_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for part in group.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_its_own_layer_or_above() {
    let layers = drawn();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut wrong = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(own) = rank(&layers, &module) else {
            panic!("src/{module} has no layer in the drawing in src/lib.rs");
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for dep in named_modules(&code(&text)) {
            if dep == module {
                continue;
            }
            let Some(theirs) = rank(&layers, &dep) else {
                panic!("{} names crate::{dep}, which has no layer", rel.display());
            };
            if theirs >= own {
                wrong
                    .entry(rel.display().to_string())
                    .or_insert_with(Vec::new)
                    .push(dep);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports from the same layer or above: {wrong:#?}"
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    let code =
        code("use crate::{cli, error::AppError};\nfn f() { crate::run::run(); }\n// crate::x\n");
    assert_eq!(named_modules(&code), ["cli", "error", "run"]);
}

#[test]
fn the_drawing_is_read_bottom_first_without_its_comments() {
    let lib =
        "//! text\n//!\n//! ```text\n//! top   the top\n//! a b   two\n//!       more\n//! ```\n";
    assert_eq!(layers(lib), [vec!["a", "b"], vec!["top"]]);
}

#[test]
fn every_module_of_lib_rs_is_drawn_once() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let layers = drawn();
    let mut drawn: Vec<&str> = layers.iter().flatten().map(String::as_str).collect();
    drawn.sort_unstable();
    let before = drawn.len();
    drawn.dedup();
    assert_eq!(before, drawn.len(), "a module is drawn twice");
    for m in declared {
        assert!(
            drawn.contains(&m),
            "src/lib.rs declares {m} but does not draw it"
        );
    }
}
