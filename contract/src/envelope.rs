//! The v3 vault envelope (contract §3): `r4v3.<b64u(header)>.<b64u(iv)>.<b64u(ct||tag)>`,
//! AES-256-GCM with the header segment as transmitted for AAD.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64U;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::EnvelopeError;
use crate::secret::{Dek, Secret};

/// Prefix of every v3 envelope.
pub const PREFIX: &str = "r4v3.";
/// The only algorithm of §3.
pub const ALG: &str = "A256GCM";
/// Largest plaintext value (§3).
pub const MAX_VALUE: usize = 1 << 20;
const TAG_LEN: usize = 16;
const IV_LEN: usize = 12;

/// The envelope header (§3). Extra members are allowed and authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `A256GCM`.
    pub alg: String,
    /// DEK version.
    pub dv: u64,
    /// Field id.
    pub fid: String,
    /// Vault id.
    pub vid: String,
}

/// What an envelope must belong to: checked before decryption.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Vault the field was asked from (for `/vault/env`: the vault whose DEK is used).
    pub vault_id: &'a str,
    /// Field asked for; `None` only for `/vault/env`, where no field id is known.
    pub field_id: Option<&'a str>,
    /// The wrapped key's `dekVersion`.
    pub dek_version: u64,
}

/// Whether a value looks like a v3 envelope.
pub fn is_envelope(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// Parses the header without decrypting (e.g. to find the vault of a
/// `/vault/env` value).
pub fn peek_header(envelope: &str) -> Result<Header, EnvelopeError> {
    let parts = split(envelope)?;
    decode_header(parts[0])
}

/// Opens `envelope` with `dek`, enforcing every check of §3 in order:
/// shape, base64url, header, `alg`, `vid`, `fid`, `dv`, then AES-GCM.
pub fn open(envelope: &str, dek: &Dek, expect: Expect<'_>) -> Result<Secret, EnvelopeError> {
    let [header_b64, iv_b64, ct_b64] = split(envelope)?;
    let header = decode_header(header_b64)?;
    let iv = B64U.decode(iv_b64).map_err(|_| EnvelopeError::Base64)?;
    let mut ct = B64U.decode(ct_b64).map_err(|_| EnvelopeError::Base64)?;
    if header.alg != ALG {
        return Err(EnvelopeError::Algorithm);
    }
    if header.vid != expect.vault_id {
        return Err(EnvelopeError::VaultMismatch);
    }
    if let Some(fid) = expect.field_id {
        if header.fid != fid {
            return Err(EnvelopeError::FieldMismatch);
        }
    }
    if header.dv != expect.dek_version {
        return Err(EnvelopeError::DekVersionMismatch);
    }
    if iv.len() != IV_LEN || ct.len() < TAG_LEN {
        return Err(EnvelopeError::Length);
    }
    if ct.len() - TAG_LEN > MAX_VALUE {
        return Err(EnvelopeError::TooLarge);
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, dek.expose()).expect("32-byte key"));
    let nonce = Nonce::try_assume_unique_for_key(&iv).map_err(|_| EnvelopeError::Length)?;
    let len = key
        .open_in_place(nonce, Aad::from(header_b64.as_bytes()), &mut ct)
        .map_err(|_| EnvelopeError::Decrypt)?
        .len();
    ct.truncate(len);
    let secret = Secret::new(ct);
    if std::str::from_utf8(secret.expose()).is_err() {
        return Err(EnvelopeError::NotUtf8);
    }
    Ok(secret)
}

/// Seals `plaintext` for field `fid` of vault `vid` (operator side).
pub fn seal(plaintext: &[u8], dek: &Dek, vid: &str, fid: &str, dv: u64) -> String {
    let mut iv = [0u8; IV_LEN];
    aws_lc_rs::rand::fill(&mut iv).expect("system RNG");
    seal_with_iv(plaintext, dek, vid, fid, dv, iv)
}

/// [`seal`] with a caller-chosen IV (tests and known-answer vectors only:
/// reusing an IV under one DEK breaks GCM).
pub fn seal_with_iv(
    plaintext: &[u8],
    dek: &Dek,
    vid: &str,
    fid: &str,
    dv: u64,
    iv: [u8; IV_LEN],
) -> String {
    let header = Header {
        alg: ALG.into(),
        dv,
        fid: fid.into(),
        vid: vid.into(),
    };
    let header_b64 = B64U.encode(crate::canon::canonical_of(&header));
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, dek.expose()).expect("32-byte key"));
    let mut buf = zeroize::Zeroizing::new(plaintext.to_vec());
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(iv),
        Aad::from(header_b64.as_bytes()),
        &mut *buf,
    )
    .expect("AES-GCM seal");
    format!(
        "{PREFIX}{header_b64}.{}.{}",
        B64U.encode(iv),
        B64U.encode(&*buf)
    )
}

fn split(envelope: &str) -> Result<[&str; 3], EnvelopeError> {
    let rest = envelope
        .strip_prefix(PREFIX)
        .ok_or(EnvelopeError::Malformed)?;
    let mut parts = rest.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(i), Some(c), None) if !h.is_empty() && !i.is_empty() && !c.is_empty() => {
            Ok([h, i, c])
        }
        _ => Err(EnvelopeError::Malformed),
    }
}

fn decode_header(header_b64: &str) -> Result<Header, EnvelopeError> {
    let bytes = B64U.decode(header_b64).map_err(|_| EnvelopeError::Base64)?;
    crate::wire::from_json(&bytes).map_err(|_| EnvelopeError::Header)
}
