//! TLS configuration: rustls on aws-lc-rs, trusting the bundled Mozilla roots
//! (so a `FROM scratch` image needs no CA files), the system roots when present
//! (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured), and the configured `ca_file`.

use rustls::RootCertStore;

use super::ClientError;

/// Builds the rustls client configuration.
pub fn client_config(extra_ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Missing or unreadable system stores are normal in minimal images.
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = extra_ca_pem {
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
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
