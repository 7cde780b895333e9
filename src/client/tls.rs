//! TLS configuration: rustls on aws-lc-rs, trusting the bundled Mozilla roots
//! (so a `FROM scratch` image needs no CA files), the configured `ca_file`,
//! and the system roots (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured).
//!
//! The trust is the union of the three, but the system store is read only
//! when it can matter: a server chain is first checked against the bundled
//! roots and `ca_file` (already parsed, free), and only a chain that does not
//! reach them ("unknown issuer") is checked again against the system roots,
//! which are then loaded once. Reading and parsing a system bundle costs
//! several milliseconds (two bundles when both `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` are set), which would otherwise be paid on every start for
//! the common case of a publicly trusted server. Both checks are complete
//! WebPKI verifications (chain, name, validity, usage); only the set of trust
//! anchors differs.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::ClientError;

/// Builds the rustls client configuration.
pub fn client_config(extra_ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        add_ca_file(&mut roots, pem)?;
    }
    let first = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ClientError::Tls(e.to_string()))?;
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

fn add_ca_file(roots: &mut RootCertStore, pem: &[u8]) -> Result<(), ClientError> {
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        let cert = cert.map_err(|e| ClientError::Tls(format!("ca_file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| ClientError::Tls(format!("ca_file: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(ClientError::Tls("ca_file holds no PEM certificate".into()));
    }
    Ok(())
}

/// Bundled roots + `ca_file` first, the system roots (loaded on first need)
/// second; see the module documentation.
#[derive(Debug)]
struct Layered {
    first: Arc<WebPkiServerVerifier>,
    system: OnceLock<Option<Arc<WebPkiServerVerifier>>>,
    provider: Arc<CryptoProvider>,
}

impl Layered {
    /// A verifier over the system roots, or `None` when there are none (a
    /// minimal image): missing or unreadable system stores are normal.
    fn system(&self) -> Option<&Arc<WebPkiServerVerifier>> {
        self.system
            .get_or_init(|| {
                let mut roots = RootCertStore::empty();
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .build()
                    .ok()
            })
            .as_ref()
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
        let verify = |v: &WebPkiServerVerifier| {
            v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        };
        match verify(&self.first) {
            Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                match self.system() {
                    Some(system) => verify(system),
                    None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
                }
            }
            outcome => outcome,
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
        self.first.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.first.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.first.supported_verify_schemes()
    }
}
