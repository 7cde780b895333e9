//! Types that hold secret bytes: zeroized on drop, redacted in `Debug`.
//!
//! Every plaintext value and every vault DEK lives in one of these from the
//! moment it is decrypted until it is dropped, so no code path can print one by
//! accident (`{:?}` shows a placeholder) and no copy outlives its owner.

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A decrypted secret value (UTF-8 text as R4 stores it).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes ownership of `bytes`; the caller keeps no copy.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The secret bytes. Callers must not copy them into anything that is not
    /// itself zeroized (logs, errors, plain `String`s).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (safe to log).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A 256-bit vault data-encryption key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Dek([u8; 32]);

impl Dek {
    /// Builds a DEK from exactly 32 bytes; the input buffer is zeroized.
    pub fn from_slice(mut bytes: Zeroizing<Vec<u8>>) -> Option<Dek> {
        if bytes.len() != 32 {
            bytes.zeroize();
            return None;
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(&bytes);
        Some(Dek(k))
    }

    /// Builds a DEK from an array (devserver and tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Dek {
        Dek(bytes)
    }

    /// A fresh random DEK.
    pub fn generate() -> Dek {
        let mut k = [0u8; 32];
        aws_lc_rs::rand::fill(&mut k).expect("system RNG failed");
        Dek(k)
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Dek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dek(<redacted>)")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => Err(serde::ser::Error::custom("secret is not UTF-8")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(d)?);
        Ok(Secret(text.as_bytes().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new(b"hunter2-value".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
        let d = Dek::from_bytes([0x41; 32]);
        assert!(!format!("{d:?}").contains("41"));
        assert!(!format!("{d:?}").contains('A'));
    }

    /// `{:?}` still says what was redacted, so a log line stays readable.
    #[test]
    fn debug_names_the_redacted_type() {
        assert_eq!(
            format!("{:?}", Secret::new(b"x".to_vec())),
            "Secret(<redacted>)"
        );
        assert_eq!(format!("{:?}", Dek::from_bytes([0; 32])), "Dek(<redacted>)");
    }

    /// The length is what may be said about a value (e.g. `-v`), exactly.
    #[test]
    fn length_and_emptiness() {
        let three = Secret::new(b"abc".to_vec());
        assert_eq!((three.len(), three.is_empty()), (3, false));
        let none = Secret::new(Vec::new());
        assert_eq!((none.len(), none.is_empty()), (0, true));
    }
}
