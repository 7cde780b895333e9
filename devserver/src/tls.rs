//! `--tls`: a throwaway local CA and a `localhost`/`127.0.0.1`/`::1` server
//! certificate it signs, made with rcgen at start; rustls (aws-lc-rs
//! provider) serving ALPN `h2` and `http/1.1`. The CA PEM is what
//! `--ca-out` writes and clients add as a trust anchor.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::Error;

/// A TLS acceptor and the PEM of the CA behind its certificate, when made here.
pub(crate) struct Tls {
    pub acceptor: TlsAcceptor,
    pub ca_pem: Option<String>,
}

fn tls_err(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

/// Makes a fresh CA, a server certificate and the rustls configuration.
pub(crate) fn make() -> Result<Tls, Error> {
    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "r4-devserver local CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).map_err(tls_err)?;

    let leaf_key = KeyPair::generate().map_err(tls_err)?;
    let names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    let mut leaf_params = CertificateParams::new(names).map_err(tls_err)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .map_err(tls_err)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    Ok(Tls {
        acceptor: acceptor(vec![leaf.der().clone(), ca.der().clone()], key)?,
        ca_pem: Some(ca.pem()),
    })
}

/// A certificate chain (leaf first) and the leaf's private key, both PEM.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    /// The certificates the server presents, leaf first.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8 PEM).
    pub key_pem: String,
}

/// Serves a given chain (the caller made it and knows its CA).
pub(crate) fn from_identity(identity: &TlsIdentity) -> Result<Tls, Error> {
    let chain = CertificateDer::pem_slice_iter(identity.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(tls_err)?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).map_err(tls_err)?;
    Ok(Tls {
        acceptor: acceptor(chain, key)?,
        ca_pem: None,
    })
}

fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
