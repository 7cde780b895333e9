//! A set of trust anchors with the rules rustls-webpki leaves out, and the
//! verification of a server chain against it.
//!
//! The rules (issue "Close three trust gaps"; `openssl verify` is the
//! reference the tests compare with):
//! - **Only a CA is an issuer.** A certificate from `ca_file`,
//!   `SSL_CERT_FILE`, `SSL_CERT_DIR` or the system store becomes a trust
//!   anchor only with `basicConstraints cA:TRUE` and, when it has a
//!   `keyUsage`, `keyCertSign`. webpki would reduce any certificate to a
//!   name and a key, so an end-entity certificate (Debian's
//!   `ssl-cert-snakeoil.pem`, say) could otherwise mint certificates for any
//!   host.
//! - **A non-CA certificate in `ca_file` is an exact pin**: accepted only
//!   when the server presents that very certificate (byte for byte), and
//!   still checked for the host name and its validity period. Elsewhere it
//!   is ignored: nobody chose to trust it.
//! - **Anchors are checked at each verification**: validity period and
//!   `pathLenConstraint` (counted as OpenSSL does: intermediates below the
//!   anchor that are not self-issued). webpki already checks both for
//!   intermediates.
//! - **Intermediates** must be able to sign: webpki checks `cA:TRUE` and the
//!   path length, and here a `keyUsage` without `keyCertSign` is refused
//!   (RFC 5280 §4.2.1.3, as OpenSSL does).
//! - **Bundled roots** (webpki-roots) are kept as webpki has them: Mozilla's
//!   program admits only CA certificates and the crate ships no certificate
//!   to re-check, only subject, key and name constraints; expired or
//!   distrusted roots leave it with its releases.
//!
//! A path that breaks a rule is refused to webpki's path builder, which
//! then tries the other candidate issuers: a chain is accepted when any
//! path through it satisfies every rule.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{CertificateError, Error, OtherError};
use webpki::{EndEntityCert, KeyUsage, VerifiedPath};

use super::der::{facts, CertFacts};
use crate::client::ClientError;

/// Trust anchors and exact pins.
#[derive(Debug, Default)]
pub(super) struct TrustSet {
    anchors: Vec<TrustAnchor<'static>>,
    /// The anchor's certificate facts, same index; `None` for bundled roots.
    facts: Vec<Option<CertFacts>>,
    pins: Vec<CertificateDer<'static>>,
}

impl TrustSet {
    /// The bundled Mozilla roots.
    pub fn bundled() -> TrustSet {
        let anchors = webpki_roots::TLS_SERVER_ROOTS.to_vec();
        let facts = vec![None; anchors.len()];
        TrustSet {
            anchors,
            facts,
            pins: Vec::new(),
        }
    }

    /// The certificates of a system store (`SSL_CERT_FILE`, `SSL_CERT_DIR`
    /// or the platform's): CAs only, anything else ignored.
    pub fn from_store(certs: &[CertificateDer<'_>]) -> TrustSet {
        let mut set = TrustSet::default();
        for cert in certs {
            if let Ok(f) = facts(cert) {
                if f.can_issue() {
                    let _ = set.add_anchor(cert, f);
                }
            }
        }
        set
    }

    /// Adds `ca_file`'s certificates: each CA as an anchor, each non-CA as an
    /// exact pin. A certificate that is neither (a CA whose key usage
    /// forbids signing certificates, or one that cannot be read) is an
    /// error: the user named it, and silently ignoring it would hide why the
    /// server is refused.
    pub fn add_ca_file(&mut self, pem: &[u8]) -> Result<(), ClientError> {
        let mut added = 0;
        for (i, cert) in rustls_pemfile::certs(&mut &pem[..]).enumerate() {
            let bad =
                |why: &str| ClientError::Tls(format!("ca_file: certificate {}: {why}", i + 1));
            let cert = cert.map_err(|e| bad(&e.to_string()))?;
            let f = facts(&cert).map_err(|_| bad("not a readable X.509 certificate"))?;
            if f.can_issue() {
                self.add_anchor(&cert, f).map_err(|e| bad(&e.to_string()))?;
            } else if f.is_ca {
                return Err(bad(
                    "a CA certificate whose keyUsage lacks keyCertSign cannot issue certificates",
                ));
            } else {
                self.pins.push(cert.into_owned());
            }
            added += 1;
        }
        if added == 0 {
            return Err(ClientError::Tls("ca_file holds no PEM certificate".into()));
        }
        Ok(())
    }

    fn add_anchor(&mut self, cert: &CertificateDer<'_>, f: CertFacts) -> Result<(), webpki::Error> {
        let anchor = webpki::anchor_from_trusted_cert(cert)?.to_owned();
        self.anchors.push(anchor);
        self.facts.push(Some(f));
        Ok(())
    }

    /// Verifies a server chain for `name` at `now`: an exact pin, or a path
    /// to an anchor that satisfies every rule of the module documentation.
    pub fn verify(
        &self,
        algs: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm],
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), Error> {
        let cert = EndEntityCert::try_from(end_entity).map_err(pki_error)?;
        if self.pins.iter().any(|p| p.as_ref() == end_entity.as_ref()) {
            let f = facts(end_entity).map_err(|_| CertificateError::BadEncoding)?;
            check_validity(&f, now).map_err(pki_error)?;
        } else {
            let rules = |path: &VerifiedPath<'_>| self.check_path(path, now);
            cert.verify_for_usage(
                algs,
                &self.anchors,
                intermediates,
                now,
                KeyUsage::server_auth(),
                None,
                Some(&rules),
            )
            .map_err(pki_error)?;
        }
        cert.verify_is_valid_for_subject_name(name)
            .map_err(pki_error)
    }

    /// The rules webpki does not apply, on one candidate path.
    fn check_path(&self, path: &VerifiedPath<'_>, now: UnixTime) -> Result<(), webpki::Error> {
        let mut below_anchor = 0;
        for cert in path.intermediate_certificates() {
            let f = facts(&cert.der()).map_err(|_| webpki::Error::BadDer)?;
            if !f.can_issue() {
                return Err(webpki::Error::EndEntityUsedAsCa);
            }
            below_anchor += usize::from(!f.self_issued);
        }
        let index = self
            .anchors
            .iter()
            .position(|a| std::ptr::eq(a, path.anchor()))
            .ok_or(webpki::Error::UnknownIssuer)?;
        let Some(anchor) = &self.facts[index] else {
            return Ok(());
        };
        check_validity(anchor, now)?;
        match anchor.path_len {
            Some(n) if below_anchor as u64 > n => Err(webpki::Error::PathLenConstraintViolated),
            _ => Ok(()),
        }
    }
}

fn check_validity(f: &CertFacts, now: UnixTime) -> Result<(), webpki::Error> {
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let at = |t: i64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.max(0) as u64));
    if secs < f.not_before {
        return Err(webpki::Error::CertNotValidYet {
            time: now,
            not_before: at(f.not_before),
        });
    }
    if secs > f.not_after {
        return Err(webpki::Error::CertExpired {
            time: now,
            not_after: at(f.not_after),
        });
    }
    Ok(())
}

/// webpki's errors as rustls reports them (the kinds `ClientError`'s hints
/// look for, such as `UnknownIssuer`, keep their rustls variant).
fn pki_error(e: webpki::Error) -> Error {
    use webpki::Error as W;
    let kind = match e {
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::CertExpired { time, not_after } => CertificateError::ExpiredContext { time, not_after },
        W::CertNotValidYet { time, not_before } => {
            CertificateError::NotValidYetContext { time, not_before }
        }
        W::CertNotValidForName(_) => CertificateError::NotValidForName,
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        W::BadDer | W::BadDerTime | W::TrailingData(_) => CertificateError::BadEncoding,
        W::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        W::EndEntityUsedAsCa => CertificateError::Other(OtherError(Arc::new(NotAnIssuer))),
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    Error::InvalidCertificate(kind)
}

/// A certificate in the chain signed another but is not allowed to.
#[derive(Debug)]
struct NotAnIssuer;

impl std::fmt::Display for NotAnIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a certificate in the chain issued another without being a CA allowed to sign certificates (basicConstraints cA:TRUE, keyUsage keyCertSign)")
    }
}

impl std::error::Error for NotAnIssuer {}
