//! Regression tests for what `cargo fuzz` found (see docs/FUZZING.md).
//!
//! Each test names the fuzz target, the minimised input and the property it
//! broke, and stays here so the fix cannot regress.

use r4_contract::canon::canonical;
use r4_contract::wire::WrappedKey;
use r4_contract::Signed;
use serde_json::Value;

/// Numbers found by the `wire` target (minimised: `45e-70`), with the JCS
/// that RFC 8785 / ECMAScript (`JSON.stringify(JSON.parse(x))`, Python's
/// `repr(float(x))`) give for them.
const NUMBERS: &[(&str, &str)] = &[
    ("45e-70", "4.5e-69"),
    ("4.5e-70", "4.5e-70"),
    ("41.5e-70", "4.15e-69"),
    ("241.5e-70", "2.415e-68"),
];

fn jcs(text: &str) -> String {
    let v: Value = serde_json::from_str(text).expect("JSON");
    String::from_utf8(canonical(&v)).expect("JCS is UTF-8")
}

/// wire target, input `45e-70`: `canonical(parse(canonical(v))) !=
/// canonical(v)`. serde_json without its `float_roundtrip` feature parses some
/// decimal numbers to a neighbouring double (1 ULP off), so r4-exec's JCS of
/// such a number differs from the signer's and a valid signature over an
/// object carrying it is refused (fail closed: a spurious exit 65, not a
/// forgery).
#[test]
fn jcs_of_a_number_is_the_ecmascript_form_of_the_correctly_rounded_double() {
    for (input, expected) in NUMBERS {
        assert_eq!(jcs(input), *expected, "JCS of {input}");
    }
}

#[test]
fn jcs_is_idempotent_on_numbers() {
    for (input, _) in NUMBERS {
        let once = jcs(input);
        assert_eq!(jcs(&once), once, "JCS of {input} is not a fixed point");
    }
}

/// The same finding where it matters: the bytes a signature covers.
#[test]
fn signed_bytes_carry_unknown_numeric_members_exactly() {
    let text = r#"{"kind":"r4.wrapped-key.v1","vaultId":"v","encryptionKeyId":"e",
        "recipientFingerprint":"sha256:00","dekVersion":1,"algorithm":"RSA-OAEP-256",
        "wrappedDek":"AA==","issuedAt":"2026-01-15T10:30:00.000Z","signerKeyId":"sha256:11",
        "signature":"AA==","ttl":45e-70}"#;
    let signed: Signed<WrappedKey> = serde_json::from_str(text).expect("wrapped key");
    let bytes = String::from_utf8(signed.signed_bytes()).expect("UTF-8");
    assert!(bytes.contains(r#""ttl":4.5e-69"#), "{bytes}");
    assert!(!bytes.contains("signature"), "{bytes}");
}

/// Integers (all the contract's own numbers) are exact, and JCS of them is a
/// fixed point.
#[test]
fn jcs_of_integers_is_exact_and_idempotent() {
    for (input, expected) in [
        ("0", "0"),
        ("-0", "0"),
        ("18446744073709551615", "18446744073709551615"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("1e21", "1e+21"),
        ("[1.0,100,1.5e-7]", "[1,100,1.5e-7]"),
    ] {
        let once = jcs(input);
        assert_eq!(once, expected, "JCS of {input}");
        assert_eq!(jcs(&once), once);
    }
}
