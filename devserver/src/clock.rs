//! Time and randomness for the devserver: milliseconds for the request log
//! and random hex from the system RNG for world epochs. RFC 3339 timestamps
//! (contract §2) come from the contract (`r4_contract::time`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as a float (request log).
pub(crate) fn unix_ms() -> f64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    d.as_secs_f64() * 1000.0
}

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf).expect("system RNG");
    hex::encode(buf)
}
