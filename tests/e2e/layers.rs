//! The layers drawn in `src/lib.rs`, enforced: no module of the library
//! names a module of its own layer or of a layer above it (`crate::x` in
//! code, `use crate::{x, …}` groups). Comments and `#[cfg(test)]` modules
//! are not read. A new module must be given a layer here, or this test
//! fails.

use std::collections::BTreeMap;
use std::path::Path;

/// Bottom to top; keep in step with the drawing in `src/lib.rs`.
const LAYERS: &[&[&str]] = &[
    &[
        "contract",
        "reference",
        "exit",
        "vars",
        "hygiene",
        "localfile",
    ],
    &["wipe", "template", "bundle"],
    &["config", "harden", "dotenv"],
    &["client", "fallback"],
    &["ui", "resolve", "mask"],
    &["inject"],
    &["exec"],
    &["holder"],
    &["error"],
    &["settings", "sources", "rotate", "trust", "browse"],
    &["invocation", "launch"],
    &["startup", "cli"],
    &["supervise", "commands"],
    &["run"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
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
        let Some(own) = rank(&module) else {
            panic!("src/{module} has no layer in tests/e2e/layers.rs (and src/lib.rs)");
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for dep in named_modules(&code(&text)) {
            if dep == module {
                continue;
            }
            let Some(theirs) = rank(&dep) else {
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
