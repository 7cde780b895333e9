//! Fuzzes `r4://` reference parsing.
//!
//! Properties, for every string that parses:
//! - `parse(r.to_string()) == r` (round trip);
//! - `r.to_string()` is the input with each `%xx` escape upper-cased: the
//!   grammar has exactly one reading, and Display is its canonical spelling;
//! - no segment is empty.
//!
//! And for every string that does not parse, the error names a segment
//! between 1 and 3 (or a count other than 3).
#![no_main]

use libfuzzer_sys::fuzz_target;
use r4_contract::reference::{Reference, ReferenceError};

/// The input with every `%` escape triple upper-cased (only called on
/// strings that parsed, where every `%` starts a complete ASCII triple).
fn canonical_spelling(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        out.push_str(&rest[pos..pos + 3].to_ascii_uppercase());
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Reference::parse(text) {
        Ok(r) => {
            assert!(!r.vault.is_empty() && !r.item.is_empty() && !r.field.is_empty());
            let shown = r.to_string();
            let again = Reference::parse(&shown)
                .unwrap_or_else(|e| panic!("Display output {shown:?} does not parse: {e}"));
            assert_eq!(again, r, "round trip through {shown:?}");
            assert_eq!(shown, canonical_spelling(text));
        }
        Err(ReferenceError::Segments(n)) => assert_ne!(n, 3),
        Err(ReferenceError::Empty(i) | ReferenceError::Escape(i)) => {
            assert!((1..=3).contains(&i))
        }
        Err(ReferenceError::Scheme) => assert!(!text.starts_with("r4://")),
    }
});
