//! A signed JSON object as received: its typed view plus the exact members the
//! server sent, because the signature covers the JCS of the object as
//! transmitted (minus `signature`), unknown members included (contract §2).

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::canon::{canonical, canonical_without};
use crate::crypto::PrivateKey;

/// A signed object: typed body plus the raw members it was parsed from.
#[derive(Clone, Debug)]
pub struct Signed<T> {
    body: T,
    raw: Map<String, Value>,
}

impl<T> Signed<T> {
    /// The typed view.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// `signerKeyId` as transmitted (empty if absent or not a string).
    pub fn signer_key_id(&self) -> &str {
        self.raw
            .get("signerKeyId")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `signature` as transmitted (empty if absent or not a string).
    pub fn signature(&self) -> &str {
        self.raw
            .get("signature")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The bytes the signature covers: JCS of the object without `signature`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        canonical_without(&self.raw, "signature")
    }
}

impl<T: DeserializeOwned> Signed<T> {
    /// Builds from raw members (fault injection, tests).
    pub fn from_raw(raw: Map<String, Value>) -> Result<Signed<T>, serde_json::Error> {
        // The typed view is read from the members by reference: the object
        // is parsed from the wire once, never copied.
        let value = Value::Object(raw);
        let body = T::deserialize(&value)?;
        match value {
            Value::Object(raw) => Ok(Signed { body, raw }),
            _ => unreachable!("built as an object above"),
        }
    }
}

impl<T: Serialize + DeserializeOwned> Signed<T> {
    /// Signs `body` with `key`: sets `signerKeyId` to the key's fingerprint and
    /// `signature` to RSA-PSS over the JCS of the rest.
    pub fn sign(body: &T, key: &PrivateKey) -> Signed<T> {
        let Value::Object(mut raw) = serde_json::to_value(body).expect("wire type") else {
            panic!("signed bodies are JSON objects");
        };
        raw.remove("signature");
        raw.insert(
            "signerKeyId".into(),
            Value::String(key.fingerprint().to_string()),
        );
        let sig = key.sign_pss(&canonical(&Value::Object(raw.clone())));
        raw.insert("signature".into(), Value::String(sig));
        Signed::from_raw(raw).expect("a signed body round-trips")
    }

    /// Returns a copy with `f` applied to the raw members (the signature is
    /// not recomputed): how tests and the devserver's faults tamper.
    pub fn tampered(&self, f: impl FnOnce(&mut Map<String, Value>)) -> Signed<T> {
        let mut raw = self.raw.clone();
        f(&mut raw);
        Signed::from_raw(raw).expect("tampering keeps the shape")
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Signed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Map::<String, Value>::deserialize(d)?;
        Signed::from_raw(raw).map_err(D::Error::custom)
    }
}

impl<T> Serialize for Signed<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}
