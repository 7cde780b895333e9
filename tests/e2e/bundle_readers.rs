//! dotenv bundles read back by the real consumers: python-dotenv and Node's
//! `dotenv` (from npm) must each parse a bundle to exactly the keys and
//! values written — never fewer keys, never another key, never a value
//! that ran on into its neighbour — or r4-exec refuses the value, naming
//! its key. Random values (quotes, backslashes, newlines, `#`, `$`, white
//! space of every kind, unicode) are rendered together into one bundle, so
//! a value that escapes its quotes shows up as a corrupted neighbour.

use crate::util as common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use r4_exec::compose::bundle::{render, Format};

/// The global node_modules folder, where `.ci/run` installs `dotenv`.
fn node_modules() -> Option<String> {
    let out = Command::new("npm").args(["root", "-g"]).output().ok()?;
    let root = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    Path::new(&root).join("dotenv").exists().then_some(root)
}

fn readers_available(test: &str) -> Option<String> {
    let python = Command::new("python3")
        .args(["-c", "import dotenv"])
        .status()
        .is_ok_and(|s| s.success());
    if !common::require(python, test, "python3 with python-dotenv") {
        return None;
    }
    let node = node_modules();
    if !common::require(
        node.is_some(),
        test,
        "node with dotenv from npm (npm install -g dotenv)",
    ) {
        return None;
    }
    node
}

/// What each reader makes of the file at `path`: key → value.
fn read_back(path: &Path, node_root: &str) -> [(String, BTreeMap<String, String>); 2] {
    let python = Command::new("python3")
        .args([
            "-c",
            "import json,sys,dotenv; print(json.dumps(dotenv.dotenv_values(sys.argv[1])))",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(python.status.success(), "{}", common::stderr(&python));
    let node = Command::new("node")
        .env("NODE_PATH", node_root)
        .args([
            "-e",
            "const fs=require('fs');console.log(JSON.stringify(require('dotenv').parse(fs.readFileSync(process.argv[1]))))",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(node.status.success(), "{}", common::stderr(&node));
    [("python-dotenv", python), ("node dotenv", node)].map(|(who, out)| {
        (
            who.to_owned(),
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{who}: {e}")),
        )
    })
}

/// Renders `values` as one bundle (the refused ones left out, each refusal
/// naming its key and never the value) and checks both readers.
fn round_trip(values: &[String], dir: &Path, node_root: &str) -> usize {
    let keys: Vec<String> = (0..values.len()).map(|i| format!("K{i}")).collect();
    let mut accepted = Vec::new();
    for (key, value) in keys.iter().zip(values) {
        match render(Format::Dotenv, &[(key, value.as_bytes())]) {
            Ok(_) => accepted.push((key.as_str(), value.as_bytes())),
            Err(e) => {
                // The message is the key and a fixed reason (`&'static str`):
                // there is no room in it for the value.
                assert_eq!(e.key, *key);
                assert_eq!(e.to_string(), format!("{key}: {}", e.reason));
            }
        }
    }
    let bundle = render(Format::Dotenv, &accepted).expect("each value was accepted alone");
    let path = dir.join("bundle.env");
    std::fs::write(&path, bundle.expose()).unwrap();
    let expected: BTreeMap<String, String> = accepted
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8(v.to_vec()).unwrap()))
        .collect();
    for (who, got) in read_back(&path, node_root) {
        assert_eq!(
            got,
            expected,
            "{who} read another set of keys or values from\n{}",
            String::from_utf8_lossy(bundle.expose())
        );
    }
    accepted.len()
}

/// Finding 1 of the review: a value ending in `\` made python-dotenv read
/// the closing quote as escaped, so the next value's lines became
/// statements (`LD_PRELOAD=…` after `load_dotenv`).
#[test]
fn a_trailing_backslash_never_runs_into_the_next_value() {
    let Some(node) = readers_available("a_trailing_backslash_never_runs_into_the_next_value")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let values = [
        "C:\\path\\".to_owned(),
        "x'\nLD_PRELOAD=/tmp/evil.so\n#".to_owned(),
        "a".to_owned(),
        "b".to_owned(),
        "c".to_owned(),
    ];
    // Every value is delivered (none needed refusing) and read back as one
    // value each: no LD_PRELOAD key, no key lost.
    assert_eq!(round_trip(&values, dir.path(), &node), values.len());
}

fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::sample::select(vec![
            '\'', '"', '\\', '\n', '\r', '#', '$', '{', '}', ' ', '\t', '=', '`', 'a', 'Z', '0',
            'é', '✓', '\u{2028}', '\u{85}', '\u{1f}', '\u{feff}', '\u{a0}', '\u{b}', '\u{c}',
            '\u{7f}', '\u{1b}',
        ]),
        1 => any::<char>().prop_filter("no NUL", |c| *c != '\0'),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop::collection::vec(nasty_char(), 0..10).prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random values, 40 to a bundle: both readers see exactly what was
    /// written.
    #[test]
    fn random_bundles_read_back_exactly(values in prop::collection::vec(value(), 40)) {
        if let Some(node) = readers_available("random_bundles_read_back_exactly") {
            let dir = tempfile::tempdir().unwrap();
            round_trip(&values, dir.path(), &node);
        }
    }
}

/// Not everything is refused: values without quotes, backslashes, carriage
/// returns and `${` (nearly every real secret) always take a form.
#[test]
fn ordinary_values_are_always_accepted() {
    for v in [
        "hunter2",
        "a b  c",
        "multi\nline\n",
        "$dollar #hash",
        "-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n",
        "ünï ✓",
    ] {
        assert!(
            render(Format::Dotenv, &[("K", v.as_bytes())]).is_ok(),
            "{v:?}"
        );
    }
}
