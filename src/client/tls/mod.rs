//! TLS configuration: rustls on aws-lc-rs, trusting the bundled Mozilla roots
//! (so a `FROM scratch` image needs no CA files), the configured `ca_file`,
//! and the system roots (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured).
//!
//! The trust is the union of the three, but the system store is read only
//! when it can matter: a server chain is first checked against the bundled
//! roots and `ca_file` (already parsed, free), and only a chain they refuse,
//! for whatever reason, is checked again against the system roots, which are
//! then loaded once. Reading and parsing a system bundle costs several
//! milliseconds (two bundles when both `SSL_CERT_FILE` and `SSL_CERT_DIR` are
//! set), which would otherwise be paid on every start for the common case of
//! a publicly trusted server. A chain is accepted when either set accepts it
//! (each path ends at one anchor, so this is exactly the union); when both
//! refuse, the first set's reason is reported unless it was "unknown
//! issuer". Which certificates may be anchors, and the checks added to
//! webpki's, are in [`trust`].

mod der;
mod trust;

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

use super::ClientError;
use trust::TrustSet;

/// Builds the rustls client configuration.
pub fn client_config(extra_ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut first = TrustSet::bundled();
    if let Some(pem) = extra_ca_pem {
        first.add_ca_file(pem)?;
    }
    let verifier = Layered {
        first,
        system: OnceLock::new(),
        provider: provider.clone(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Bundled roots + `ca_file` first, the system roots (loaded on first need)
/// second; see the module documentation.
#[derive(Debug)]
struct Layered {
    first: TrustSet,
    system: OnceLock<TrustSet>,
    provider: Arc<CryptoProvider>,
}

impl Layered {
    /// The system roots; empty when there are none (a minimal image):
    /// missing or unreadable system stores are normal.
    fn system(&self) -> &TrustSet {
        self.system
            .get_or_init(|| TrustSet::from_store(&rustls_native_certs::load_native_certs().certs))
    }
}

impl ServerCertVerifier for Layered {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let _ = ocsp_response; // no stapling policy: revocation is not checked
        let algs = self.provider.signature_verification_algorithms.all;
        let verify = |set: &TrustSet| set.verify(algs, end_entity, intermediates, server_name, now);
        let first = match verify(&self.first) {
            Ok(()) => return Ok(ServerCertVerified::assertion()),
            Err(e) => e,
        };
        match verify(self.system()) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(e) if first == Error::InvalidCertificate(CertificateError::UnknownIssuer) => Err(e),
            Err(_) => Err(first),
        }
    }

    // Handshake signatures are checked with the certificate's key, whichever
    // root vouched for it: the roots play no part.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
