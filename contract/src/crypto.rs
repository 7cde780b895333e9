//! RSA keys, fingerprints, digests and the contract's signature and key-wrap
//! algorithms (contract §2, §4.1, §6.5), on `aws-lc-rs`.
//!
//! Why `aws-lc-rs` and not the `rsa` crate: its RSA private-key operations are
//! constant-time (the `rsa` crate carries RUSTSEC-2023-0071, "Marvin"), and on
//! our machines it unwraps a 3072-bit key about five times faster (0.65 ms
//! against 3.3 ms). One library then serves RSA, AES-GCM, SHA-256, the RNG and
//! rustls' TLS provider.
//!
//! Private key material lives in aws-lc's own allocations, which it cleanses
//! when freed; every intermediate DER/PEM buffer here is `Zeroizing`.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::sync::OnceLock;

use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::secret::Dek;

/// Smallest RSA modulus the contract accepts (§2).
pub const MIN_RSA_BITS: usize = 2048;
const PEM_PUBLIC: &str = "PUBLIC KEY";
const PEM_RSA_PUBLIC: &str = "RSA PUBLIC KEY";
const PEM_PKCS8: &str = "PRIVATE KEY";
const PEM_PKCS1: &str = "RSA PRIVATE KEY";

/// `sha256:` + lowercase hex SHA-256 of `bytes` (contract §2 "Digest").
pub fn digest(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    format!("sha256:{}", hex::encode(d.as_ref()))
}

/// [`digest`] of bytes given in parts: the same value as `digest` of their
/// concatenation, without holding all of it (a 10 000-item list is about
/// 1.2 MB of canonical JSON).
pub struct Digester(aws_lc_rs::digest::Context);

impl Digester {
    /// An empty SHA-256 state.
    pub fn new() -> Digester {
        Digester(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// `sha256:` + lowercase hex of everything added.
    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.0.finish().as_ref()))
    }
}

impl Default for Digester {
    fn default() -> Digester {
        Digester::new()
    }
}

/// Raw SHA-256.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// An RSA public key as the contract uses it: parsed once, with its SPKI DER
/// and its fingerprint (which is also a signer's `keyId`).
#[derive(Clone)]
pub struct PublicKey {
    spki: Vec<u8>,
    fingerprint: String,
    bits: usize,
    verifier: std::sync::Arc<ParsedPublicKey>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({}, {} bits)", self.fingerprint, self.bits)
    }
}

impl PublicKey {
    /// Parses an SPKI PEM (`BEGIN PUBLIC KEY`, or an SPKI body under
    /// `BEGIN RSA PUBLIC KEY` as seeds/002 prints it). A true PKCS#1 body, a
    /// non-RSA key, a modulus under 2048 bits or an exponent other than 65537
    /// are refused.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let (label, der) =
            pem_rfc7468::decode_vec(pem.trim().as_bytes()).map_err(|_| KeyError::BadPem)?;
        match label {
            PEM_PUBLIC | PEM_RSA_PUBLIC => PublicKey::from_spki_der(&der),
            PEM_PKCS8 | PEM_PKCS1 => Err(KeyError::ExpectedPublicKey),
            _ => Err(KeyError::UnexpectedLabel(label.to_string())),
        }
    }

    /// Parses SubjectPublicKeyInfo DER.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let enc =
            PublicEncryptingKey::from_der(der).map_err(|e| rejected(e, KeyError::NotRsaSpki))?;
        let bits = enc.key_size_bits();
        if bits < MIN_RSA_BITS {
            return Err(KeyError::TooSmall(bits));
        }
        let parsed = aws_lc_rs::rsa::PublicKey::from_der(der).map_err(|_| KeyError::NotRsaSpki)?;
        if parsed.exponent().big_endian_without_leading_zero() != [0x01, 0x00, 0x01] {
            return Err(KeyError::BadExponent);
        }
        let verifier = ParsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, der)
            .map_err(|_| KeyError::NotRsaSpki)?;
        Ok(PublicKey {
            fingerprint: digest(der),
            spki: der.to_vec(),
            bits,
            verifier: std::sync::Arc::new(verifier),
        })
    }

    /// `sha256:<hex>` of the SPKI DER.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The SPKI DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// SPKI PEM (`BEGIN PUBLIC KEY`), as sent to `POST /vault/public-key`.
    pub fn to_pem(&self) -> String {
        pem_rfc7468::encode_string(PEM_PUBLIC, pem_rfc7468::LineEnding::LF, &self.spki)
            .expect("PEM encoding of DER cannot fail")
    }

    /// Verifies an RSA-PSS-SHA256 (salt 32) signature given as `b64`.
    pub fn verify_pss(&self, message: &[u8], signature_b64: &str) -> bool {
        let Ok(sig) = B64.decode(signature_b64) else {
            return false;
        };
        self.verifier.verify_sig(message, &sig).is_ok()
    }

    /// RSA-OAEP-256 wraps `dek` to this key (operator side of §4.1).
    pub fn wrap_dek(&self, dek: &Dek) -> String {
        self.oaep_encrypt(&OAEP_SHA256_MGF1SHA256, dek.expose())
    }

    /// RSA-OAEP-SHA1 encryption of a legacy field value (§6.5, server side).
    pub fn legacy_encrypt(&self, plaintext: &[u8]) -> String {
        self.oaep_encrypt(&OAEP_SHA1_MGF1SHA1, plaintext)
    }

    fn oaep_encrypt(
        &self,
        alg: &'static aws_lc_rs::rsa::OaepAlgorithm,
        plaintext: &[u8],
    ) -> String {
        let enc = PublicEncryptingKey::from_der(&self.spki).expect("parsed at construction");
        let oaep = OaepPublicEncryptingKey::new(enc).expect("RSA key");
        let mut out = vec![0u8; oaep.ciphertext_size()];
        let ct = oaep
            .encrypt(alg, plaintext, &mut out, None)
            .expect("plaintext fits the modulus");
        B64.encode(ct)
    }
}

/// Maps aws-lc's refusal of a key to `otherwise`, except a small modulus:
/// aws-lc rejects moduli under 2048 bits itself, before our own size check
/// can name the problem.
fn rejected(e: aws_lc_rs::error::KeyRejected, otherwise: KeyError) -> KeyError {
    match e.description_() {
        "TooSmall" => KeyError::TooSmall(0),
        _ => otherwise,
    }
}

/// An RSA private key (the agent's runtime key, or an operator/log key in the
/// devserver). Never printed, never serialized except by `keygen`.
pub struct PrivateKey {
    /// The parsed key (aws-lc's `EVP_PKEY`, shared by reference count with
    /// `decrypter`): the source of the signer and of the PKCS#8 export.
    key: PrivateDecryptingKey,
    /// Built on first use from `key`: `r4-exec` only decrypts, and parsing a
    /// second copy (with aws-lc's `RSA_check_key`) cost ~0.25 ms per start.
    signer: OnceLock<KeyPair>,
    decrypter: OaepPrivateDecryptingKey,
    public: PublicKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(<redacted>, {})", self.public.fingerprint)
    }
}

impl PrivateKey {
    /// Parses a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE
    /// KEY`) PEM. Encrypted keys, public keys, non-RSA keys and keys under 2048
    /// bits are refused with a distinct error.
    pub fn from_pem(pem: &[u8]) -> Result<PrivateKey, KeyError> {
        let text = std::str::from_utf8(pem).map_err(|_| KeyError::BadPem)?;
        if text.contains("ENCRYPTED") || text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(KeyError::Encrypted);
        }
        let (label, der) = pem_rfc7468::decode_vec(text.trim().as_bytes())
            .map(|(l, d)| (l.to_string(), Zeroizing::new(d)))
            .map_err(|_| KeyError::BadPem)?;
        match label.as_str() {
            PEM_PKCS8 => PrivateKey::from_pkcs8_der(&der),
            PEM_PKCS1 => {
                let kp =
                    KeyPair::from_der(&der).map_err(|e| rejected(e, KeyError::NotRsaPrivate))?;
                PrivateKey::from_key_pair(kp)
            }
            PEM_PUBLIC | PEM_RSA_PUBLIC => Err(KeyError::ExpectedPrivateKey),
            "EC PRIVATE KEY" | "DSA PRIVATE KEY" | "OPENSSH PRIVATE KEY" => {
                Err(KeyError::NotRsaPrivate)
            }
            other => Err(KeyError::UnexpectedLabel(other.to_string())),
        }
    }

    /// Parses PKCS#8 DER.
    ///
    /// Parsed once: `PrivateDecryptingKey::from_pkcs8` and `KeyPair::from_pkcs8`
    /// run the same aws-lc parse (`EVP_parse_private_key`, which checks the key
    /// with `RSA_check_key`) and the same RSA type and 2048..=8192-bit check, so
    /// the signer is derived from this parse when it is first needed.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        let key = PrivateDecryptingKey::from_pkcs8(der)
            .map_err(|e| rejected(e, KeyError::NotRsaPrivate))?;
        PrivateKey::from_decrypting_key(key, OnceLock::new())
    }

    fn from_key_pair(kp: KeyPair) -> Result<PrivateKey, KeyError> {
        let bits = kp.public_modulus_len() * 8;
        if bits < MIN_RSA_BITS {
            return Err(KeyError::TooSmall(bits));
        }
        let pkcs8: Pkcs8V1Der = kp.as_der().map_err(|_| KeyError::NotRsaPrivate)?;
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        let key = PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(|_| KeyError::NotRsaPrivate)?;
        PrivateKey::from_decrypting_key(key, OnceLock::from(kp))
    }

    fn from_decrypting_key(
        key: PrivateDecryptingKey,
        signer: OnceLock<KeyPair>,
    ) -> Result<PrivateKey, KeyError> {
        let bits = key.key_size_bits();
        if bits < MIN_RSA_BITS {
            return Err(KeyError::TooSmall(bits));
        }
        let decrypter =
            OaepPrivateDecryptingKey::new(key.clone()).map_err(|_| KeyError::NotRsaPrivate)?;
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| KeyError::NotRsaPrivate)?;
        let public = PublicKey::from_spki_der(spki.as_ref())?;
        Ok(PrivateKey {
            key,
            signer,
            decrypter,
            public,
        })
    }

    /// The signing half, parsed from this key's PKCS#8 on first use.
    fn signer(&self) -> &KeyPair {
        self.signer.get_or_init(|| {
            let der: Pkcs8V1Der = self.key.as_der().expect("RSA key serializes");
            KeyPair::from_pkcs8(der.as_ref()).expect("a parsed RSA key parses again")
        })
    }

    /// Generates a fresh key of `bits` (2048, 3072 or 4096).
    pub fn generate(bits: usize) -> Result<PrivateKey, KeyError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            other => return Err(KeyError::UnsupportedSize(other)),
        };
        let kp = KeyPair::generate(size).map_err(|_| KeyError::Generation)?;
        PrivateKey::from_key_pair(kp)
    }

    /// PKCS#8 PEM of this key, zeroized when dropped.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let der: Pkcs8V1Der = self.key.as_der().expect("RSA key serializes");
        Zeroizing::new(
            pem_rfc7468::encode_string(PEM_PKCS8, pem_rfc7468::LineEnding::LF, der.as_ref())
                .expect("PEM encoding of DER cannot fail"),
        )
    }

    /// The matching public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Fingerprint of the public half.
    pub fn fingerprint(&self) -> &str {
        self.public.fingerprint()
    }

    /// RSA-PSS-SHA256 (salt 32) signature of `message`, `b64`.
    pub fn sign_pss(&self, message: &[u8]) -> String {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signer = self.signer();
        let mut sig = vec![0u8; signer.public_modulus_len()];
        signer
            .sign(&RSA_PSS_SHA256, &rng, message, &mut sig)
            .expect("RSA signing with a valid key");
        B64.encode(sig)
    }

    /// RSA-OAEP-256 unwrap of a `b64` wrapped DEK (§4.1); the DEK must be 32 bytes.
    pub fn unwrap_dek(&self, wrapped_b64: &str) -> Result<Dek, KeyError> {
        let pt = self.oaep_decrypt(&OAEP_SHA256_MGF1SHA256, wrapped_b64)?;
        Dek::from_slice(pt).ok_or(KeyError::DekLength)
    }

    /// RSA-OAEP-SHA1 decryption of a legacy field value (§6.5).
    pub fn legacy_decrypt(&self, ciphertext_b64: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.oaep_decrypt(&OAEP_SHA1_MGF1SHA1, ciphertext_b64)
    }

    fn oaep_decrypt(
        &self,
        alg: &'static aws_lc_rs::rsa::OaepAlgorithm,
        ciphertext_b64: &str,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let ct = B64
            .decode(ciphertext_b64.trim())
            .map_err(|_| KeyError::BadBase64)?;
        let mut out = Zeroizing::new(vec![0u8; self.decrypter.min_output_size()]);
        let len = self
            .decrypter
            .decrypt(alg, &ct, &mut out, None)
            .map_err(|_| KeyError::DecryptFailed)?
            .len();
        out.truncate(len);
        Ok(out)
    }
}
