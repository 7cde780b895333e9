//! Fuzzes the v3 envelope parser and opener (contract §3).
//!
//! Any string goes to `peek_header` and to `open` under the DEK, vault and
//! field of `r4-test-vectors.json` (so the seeds decrypt), with and without
//! an expected field id. Properties:
//! - nothing panics;
//! - an envelope that opens has a header that `peek_header` reads and that
//!   matches every expectation (alg, vid, fid, dv), and its value is UTF-8
//!   of at most 1 MiB;
//! - sealing the input bytes and opening the result gives them back exactly
//!   when they are UTF-8, and a one-byte change in the sealed text is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r4_contract::envelope::{self, Expect, ALG, MAX_VALUE};
use r4_contract::{Dek, EnvelopeError};

const VID: &str = "507f1f77bcf86cd799439011";
const FID: &str = "507f1f77bcf86cd799439019";

fn dek() -> Dek {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    Dek::from_bytes(k)
}

fuzz_target!(|data: &[u8]| {
    let dek = dek();
    if let Ok(text) = std::str::from_utf8(data) {
        let peeked = envelope::peek_header(text);
        assert_eq!(envelope::is_envelope(text), text.starts_with("r4v3."));
        for field_id in [Some(FID), None] {
            let expect = Expect {
                vault_id: VID,
                field_id,
                dek_version: 1,
            };
            match envelope::open(text, &dek, expect) {
                Ok(secret) => {
                    let h = peeked
                        .as_ref()
                        .expect("an opened envelope has a readable header");
                    assert_eq!(h.alg, ALG);
                    assert_eq!(h.vid, VID);
                    assert_eq!(h.dv, 1);
                    if let Some(fid) = field_id {
                        assert_eq!(h.fid, fid);
                    }
                    assert!(secret.len() <= MAX_VALUE);
                    assert!(std::str::from_utf8(secret.expose()).is_ok());
                }
                Err(EnvelopeError::Malformed) => assert!(peeked.is_err()),
                Err(_) => {}
            }
        }
    }

    // Seal/open round trip of the raw input as a value.
    let iv = [7u8; 12];
    let sealed = envelope::seal_with_iv(data, &dek, VID, FID, 1, iv);
    let expect = Expect {
        vault_id: VID,
        field_id: Some(FID),
        dek_version: 1,
    };
    match envelope::open(&sealed, &dek, expect) {
        Ok(secret) => assert_eq!(secret.expose(), data),
        Err(EnvelopeError::NotUtf8) => assert!(std::str::from_utf8(data).is_err()),
        Err(EnvelopeError::TooLarge) => assert!(data.len() > MAX_VALUE),
        Err(e) => panic!("a freshly sealed envelope does not open: {e}"),
    }
    // Flip one byte of the sealed text, chosen by the input: never accepted
    // unless the flip left the text equal (it cannot) or decodes identically.
    if !sealed.is_empty() {
        let pos = data.first().map_or(0, |b| *b as usize) % sealed.len();
        let mut bytes = sealed.clone().into_bytes();
        bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
        if let Ok(tampered) = String::from_utf8(bytes) {
            if let Ok(secret) = envelope::open(&tampered, &dek, expect) {
                // base64url without padding has no second spelling, so any
                // accepted change is a forgery.
                panic!(
                    "tampered envelope accepted at byte {pos} ({} bytes)",
                    secret.len()
                );
            }
        }
    }
});
