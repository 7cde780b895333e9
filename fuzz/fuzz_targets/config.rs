//! Fuzzes `r4.toml` parsing and validation (`Config::parse`, no file I/O).
//!
//! Properties:
//! - nothing panics (toml, serde, the glob parser, reference and name checks);
//! - every error message names the file;
//! - an accepted config only holds valid env var names, each once, with
//!   references that re-parse to what was stored, and a `[project]` whose
//!   globs can be applied.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use r4_contract::envname::is_valid_env_name;
use r4_contract::reference::Reference;
use r4_exec::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for require_entries in [true, false] {
        match Config::parse(text, Path::new("r4.toml"), require_entries) {
            Ok(config) => {
                let mut seen = BTreeSet::new();
                for e in &config.entries {
                    assert!(is_valid_env_name(&e.name), "accepted name {:?}", e.name);
                    assert!(seen.insert(e.name.as_str()), "{} mapped twice", e.name);
                    assert_eq!(Reference::parse(&e.raw).as_ref(), Ok(&e.reference));
                }
                if require_entries {
                    assert!(!config.entries.is_empty() || config.project.is_some());
                }
                if let Some(p) = &config.project {
                    for e in &config.entries {
                        let _ = p.selects(&e.name);
                    }
                    let _ = p.selects("PRODUCTION_DB_PASSWORD");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("r4.toml"),
                    "message without the file: {msg}"
                );
            }
        }
    }
});
