//! The legacy server-held agent key pair of `GET /vault/encryption-key`
//! (contract §6.5, seeds/002). Seeds/002 shows the private key as PKCS#1
//! (`BEGIN RSA PRIVATE KEY`) and the public key as an SPKI body under a
//! `BEGIN RSA PUBLIC KEY` label; the devserver reproduces both, so clients
//! exercise the tolerance §2 asks of them.

use r4_contract::crypto::PrivateKey;
use zeroize::Zeroizing;

/// A server-held legacy key pair of one agent.
pub(crate) struct LegacyKey {
    /// Its `encryptionKeyId`.
    pub id: String,
    /// The key pair.
    pub key: PrivateKey,
}

impl LegacyKey {
    /// Generates a fresh pair with id `id`.
    pub(crate) fn generate(id: String) -> LegacyKey {
        LegacyKey {
            id,
            key: PrivateKey::generate(2048).expect("RSA key generation"),
        }
    }

    /// The private key as PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`).
    pub(crate) fn private_pkcs1_pem(&self) -> Zeroizing<String> {
        let pkcs8 = self.key.to_pkcs8_pem();
        let (_, der) = pem_rfc7468::decode_vec(pkcs8.as_bytes()).expect("our own PEM");
        let der = Zeroizing::new(der);
        let pkcs1 = pkcs1_of_pkcs8(&der).expect("aws-lc writes RSA PKCS#8");
        Zeroizing::new(
            pem_rfc7468::encode_string("RSA PRIVATE KEY", pem_rfc7468::LineEnding::LF, pkcs1)
                .expect("PEM encoding"),
        )
    }

    /// The public key: SPKI DER under an `RSA PUBLIC KEY` label (seeds/002).
    pub(crate) fn public_pem(&self) -> String {
        pem_rfc7468::encode_string(
            "RSA PUBLIC KEY",
            pem_rfc7468::LineEnding::LF,
            self.key.public().spki_der(),
        )
        .expect("PEM encoding")
    }
}

/// One DER TLV: (tag, content, rest).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo`, which for RSA
/// is the PKCS#1 `RSAPrivateKey`.
fn pkcs1_of_pkcs8(der: &[u8]) -> Option<&[u8]> {
    let (0x30, seq, _) = tlv(der)? else {
        return None;
    };
    let (0x02, _, rest) = tlv(seq)? else {
        return None;
    };
    let (0x30, _, rest) = tlv(rest)? else {
        return None;
    };
    let (0x04, key, _) = tlv(rest)? else {
        return None;
    };
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use r4_contract::crypto::PublicKey;

    #[test]
    fn pkcs1_pem_parses_back_and_decrypts() {
        let k = LegacyKey::generate("x".into());
        let pem = k.private_pkcs1_pem();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let back = PrivateKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(back.fingerprint(), k.key.fingerprint());
        let public = PublicKey::from_pem(&k.public_pem()).unwrap();
        let ct = public.legacy_encrypt(b"hello");
        assert_eq!(&back.legacy_decrypt(&ct).unwrap()[..], b"hello");
    }
}
