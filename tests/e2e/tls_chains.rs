//! Which certificate chains r4-exec trusts, with `openssl verify` as the
//! oracle: every chain here is built in the test (rcgen), served by a TLS
//! devserver, and run through the real binary and through OpenSSL; both must
//! give the expected answer. The attacks: an end-entity certificate in a
//! trust source minting a certificate for the R4 host (through `ca_file`,
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`), an expired root, an intermediate or
//! root whose key usage forbids signing certificates, path-length
//! violations, a pin that is not the presented certificate. See
//! `src/client/tls/trust.rs` for the rules.

use std::path::Path;
use std::process::Command;

use crate::util::*;
use r4_devserver::TlsIdentity;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its key.
struct Cert {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Cert {
    fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// What kind of certificate to make.
#[derive(Clone, Copy)]
enum Kind {
    /// A CA (with keyCertSign) and its path length constraint.
    Ca(Option<u8>),
    /// `cA:TRUE` but keyUsage without keyCertSign.
    CaWithoutCertSign,
    /// `cA:FALSE` (explicit), for `other.example`.
    NotCa,
    /// A server certificate for 127.0.0.1 and localhost.
    Leaf,
}

fn params(kind: Kind, cn: &str) -> CertificateParams {
    let names = match kind {
        Kind::Leaf => vec!["localhost".to_string(), "127.0.0.1".into()],
        Kind::NotCa => vec!["other.example".to_string()],
        _ => Vec::new(),
    };
    let mut p = CertificateParams::new(names).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    match kind {
        Kind::Ca(len) => {
            p.is_ca = IsCa::Ca(match len {
                Some(n) => BasicConstraints::Constrained(n),
                None => BasicConstraints::Unconstrained,
            });
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        }
        Kind::CaWithoutCertSign => {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        }
        Kind::NotCa => p.is_ca = IsCa::ExplicitNoCa,
        Kind::Leaf => {
            p.is_ca = IsCa::ExplicitNoCa;
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
    }
    p
}

fn self_signed(kind: Kind, cn: &str) -> Cert {
    self_signed_with(params(kind, cn))
}

fn self_signed_with(p: CertificateParams) -> Cert {
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Cert { cert, key }
}

fn issued(kind: Kind, cn: &str, issuer: &Cert) -> Cert {
    let key = KeyPair::generate().unwrap();
    let cert = params(kind, cn)
        .signed_by(&key, &issuer.cert, &issuer.key)
        .unwrap();
    Cert { cert, key }
}

/// Where the anchors are put.
#[derive(Clone, Copy, Debug)]
enum Source {
    CaFile,
    SslCertFile,
    SslCertDir,
}

/// One chain to judge: the trusted certificates, what the server presents
/// (leaf first) and whether it must be accepted.
struct Case {
    name: &'static str,
    trusted: Vec<String>,
    presented: Vec<String>,
    leaf_key: String,
    source: Source,
    accept: bool,
    /// OpenSSL's answer, when it differs from ours: r4-exec may be stricter
    /// than OpenSSL, never looser.
    openssl: bool,
}

impl Case {
    /// OpenSSL accepts this chain and r4-exec deliberately does not.
    fn stricter_than_openssl(mut self) -> Case {
        assert!(!self.accept);
        self.openssl = true;
        self
    }
}

fn case(
    name: &'static str,
    trusted: &[&Cert],
    chain: &[&Cert],
    source: Source,
    accept: bool,
) -> Case {
    Case {
        name,
        trusted: trusted.iter().map(|c| c.pem()).collect(),
        presented: chain.iter().map(|c| c.pem()).collect(),
        leaf_key: chain[0].key.serialize_pem(),
        source,
        accept,
        openssl: accept,
    }
}

/// `openssl verify` on the case, as a TLS client of 127.0.0.1 would.
fn openssl_accepts(c: &Case, dir: &Path) -> bool {
    std::fs::write(dir.join("leaf.pem"), &c.presented[0]).unwrap();
    std::fs::write(dir.join("untrusted.pem"), c.presented[1..].concat()).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-purpose", "sslserver", "-verify_ip", "127.0.0.1"]);
    match c.source {
        Source::SslCertDir => cmd.arg("-CApath").arg(dir.join("certs")),
        _ => cmd.arg("-CAfile").arg(dir.join("trusted.pem")),
    };
    if c.presented.len() > 1 {
        cmd.arg("-untrusted").arg(dir.join("untrusted.pem"));
    }
    let out = cmd
        .arg(dir.join("leaf.pem"))
        .output()
        .expect("openssl (the oracle of this test) must be installed");
    out.status.success()
}

/// Runs r4-exec against a devserver presenting the case's chain; returns
/// whether COMMAND ran with the secret, and r4-exec's stderr.
fn r4exec_accepts(c: &Case, world: &World) -> (bool, String) {
    let server = server_with(&seed_text(true), |opts| {
        opts.tls = true;
        opts.tls_identity = Some(TlsIdentity {
            chain_pem: c.presented.concat(),
            key_pem: c.leaf_key.clone(),
        });
    });
    let base = server.base_url().to_string();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let mut cmd = world.std_command();
    cmd.env("R4_BASE_URL", &base)
        .env("SSL_CERT_FILE", world.path("no-such-file.pem"))
        .env("SSL_CERT_DIR", world.path("no-such-dir"));
    match c.source {
        Source::CaFile => {
            world.config(&format!(
                "[r4]\nca_file = \"{}\"\n{CONFIG}",
                world.path("trusted.pem").display()
            ));
        }
        Source::SslCertFile => {
            world.config(CONFIG);
            cmd.env("SSL_CERT_FILE", world.path("trusted.pem"));
        }
        Source::SslCertDir => {
            world.config(CONFIG);
            cmd.env("SSL_CERT_DIR", world.path("certs"));
        }
    }
    let out = cmd
        .args(["--", "sh", "-c", "printf %s \"$DB_PASSWORD\""])
        .output()
        .unwrap();
    let ran = stdout(&out) == DB_PASSWORD;
    assert_eq!(ran, out.status.success(), "{}", stderr(&out));
    if !ran {
        assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    }
    (ran, stderr(&out))
}

/// Writes the trusted certificates as a bundle and as an `openssl rehash`
/// directory.
fn write_trust(c: &Case, world: &World) {
    std::fs::write(world.path("trusted.pem"), c.trusted.concat()).unwrap();
    let dir = world.path("certs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    for (i, pem) in c.trusted.iter().enumerate() {
        std::fs::write(dir.join(format!("cert{i}.pem")), pem).unwrap();
    }
    let out = Command::new("openssl")
        .arg("rehash")
        .arg(&dir)
        .output()
        .expect("openssl rehash");
    assert!(out.status.success(), "{}", stderr(&out));
}

fn judge(cases: &[Case]) {
    if !require(
        on_path("openssl"),
        "tls_chains",
        "openssl, the oracle of these tests",
    ) {
        return;
    }
    let world = World::new();
    let mut wrong = Vec::new();
    for c in cases {
        write_trust(c, &world);
        let oracle = openssl_accepts(c, world.dir.path());
        let (ours, err) = r4exec_accepts(c, &world);
        if oracle != c.openssl || ours != c.accept {
            wrong.push(format!(
                "{} via {:?}: expected {}, openssl {}, r4-exec {} ({})",
                c.name,
                c.source,
                c.accept,
                oracle,
                ours,
                err.trim()
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn good_chains_are_accepted() {
    let root = self_signed(Kind::Ca(None), "Good Root");
    let leaf = issued(Kind::Leaf, "localhost", &root);
    let inter = issued(Kind::Ca(None), "Good Intermediate", &root);
    let leaf2 = issued(Kind::Leaf, "localhost", &inter);
    let mut cases = Vec::new();
    for source in [Source::CaFile, Source::SslCertFile, Source::SslCertDir] {
        cases.push(case("root -> leaf", &[&root], &[&leaf], source, true));
        cases.push(case(
            "root -> intermediate -> leaf",
            &[&root],
            &[&leaf2, &inter],
            source,
            true,
        ));
    }
    judge(&cases);
}

#[test]
fn a_certificate_that_is_not_a_ca_issues_nothing() {
    let not_ca = self_signed(Kind::NotCa, "other.example");
    let minted = issued(Kind::Leaf, "localhost", &not_ca);
    let cases: Vec<Case> = [Source::CaFile, Source::SslCertFile, Source::SslCertDir]
        .into_iter()
        .map(|s| {
            case(
                "non-CA anchor minting a leaf",
                &[&not_ca],
                &[&minted],
                s,
                false,
            )
        })
        .collect();
    judge(&cases);
}

#[test]
fn a_pinned_leaf_is_accepted_only_when_it_is_the_one_presented() {
    let pinned = self_signed(Kind::Leaf, "localhost");
    let other = self_signed(Kind::Leaf, "localhost");
    judge(&[
        case(
            "exact leaf pin",
            &[&pinned],
            &[&pinned],
            Source::CaFile,
            true,
        ),
        case(
            "pin of another leaf with the same name",
            &[&pinned],
            &[&other],
            Source::CaFile,
            false,
        ),
        // Outside ca_file a non-CA certificate is not even a pin: OpenSSL
        // trusts a self-signed leaf found in its CA file, but the system
        // store is where certificates nobody chose for R4 live (Debian's
        // snakeoil certificate, whose key the ssl-cert group reads).
        case(
            "leaf in SSL_CERT_FILE",
            &[&pinned],
            &[&pinned],
            Source::SslCertFile,
            false,
        )
        .stricter_than_openssl(),
    ]);
}

#[test]
fn an_expired_root_is_refused() {
    let mut p = params(Kind::Ca(None), "Expired Root");
    p.not_before = rcgen::date_time_ymd(2015, 1, 1);
    p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let root = self_signed_with(p);
    let leaf = issued(Kind::Leaf, "localhost", &root);
    let cases: Vec<Case> = [Source::CaFile, Source::SslCertFile]
        .into_iter()
        .map(|s| case("expired root", &[&root], &[&leaf], s, false))
        .collect();
    judge(&cases);
}

#[test]
fn a_ca_whose_key_usage_lacks_key_cert_sign_issues_nothing() {
    let root = self_signed(Kind::Ca(None), "Root");
    let inter = issued(
        Kind::CaWithoutCertSign,
        "Intermediate without keyCertSign",
        &root,
    );
    let leaf = issued(Kind::Leaf, "localhost", &inter);
    let bad_root = self_signed(Kind::CaWithoutCertSign, "Root without keyCertSign");
    let leaf2 = issued(Kind::Leaf, "localhost", &bad_root);
    judge(&[
        case(
            "intermediate without keyCertSign",
            &[&root],
            &[&leaf, &inter],
            Source::CaFile,
            false,
        ),
        case(
            "root without keyCertSign",
            &[&bad_root],
            &[&leaf2],
            Source::SslCertFile,
            false,
        ),
    ]);
}

#[test]
fn path_length_constraints_hold_for_roots_and_intermediates() {
    let root0 = self_signed(Kind::Ca(Some(0)), "Root pathlen 0");
    let inter = issued(Kind::Ca(None), "Intermediate", &root0);
    let leaf = issued(Kind::Leaf, "localhost", &inter);
    let root1 = self_signed(Kind::Ca(Some(1)), "Root pathlen 1");
    let inter1 = issued(Kind::Ca(None), "Intermediate", &root1);
    let leaf1 = issued(Kind::Leaf, "localhost", &inter1);
    let root = self_signed(Kind::Ca(None), "Root");
    let top = issued(Kind::Ca(Some(0)), "Intermediate pathlen 0", &root);
    let below = issued(Kind::Ca(None), "Second intermediate", &top);
    let leaf2 = issued(Kind::Leaf, "localhost", &below);
    judge(&[
        case(
            "root pathlen 0 over an intermediate",
            &[&root0],
            &[&leaf, &inter],
            Source::CaFile,
            false,
        ),
        case(
            "root pathlen 0 over an intermediate",
            &[&root0],
            &[&leaf, &inter],
            Source::SslCertFile,
            false,
        ),
        case(
            "root pathlen 1 over an intermediate",
            &[&root1],
            &[&leaf1, &inter1],
            Source::CaFile,
            true,
        ),
        case(
            "intermediate pathlen 0 over another",
            &[&root],
            &[&leaf2, &below, &top],
            Source::CaFile,
            false,
        ),
    ]);
}

/// A system CA named like a bundled root (same subject bytes, another key)
/// used to be refused: the bundled root was found by name, its signature
/// check failed, and the system store was consulted only for "unknown
/// issuer". Any refusal by the first stores now falls through to the
/// system store.
#[test]
fn a_system_ca_named_like_a_bundled_root_is_still_tried() {
    use rcgen::{DnValue, PrintableString};
    let mut p = params(Kind::Ca(None), "unused");
    p.distinguished_name = rcgen::DistinguishedName::new();
    for (ty, value) in [
        (DnType::CountryName, "US"),
        (DnType::OrganizationName, "Internet Security Research Group"),
        (DnType::CommonName, "ISRG Root X1"),
    ] {
        let v = PrintableString::try_from(value).unwrap();
        p.distinguished_name.push(ty, DnValue::PrintableString(v));
    }
    let root = self_signed_with(p);
    let subject = webpki::anchor_from_trusted_cert(root.cert.der())
        .unwrap()
        .subject
        .to_vec();
    assert!(
        webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .any(|a| a.subject.as_ref() == subject.as_slice()),
        "the premise: a bundled root has this subject"
    );
    let leaf = issued(Kind::Leaf, "localhost", &root);
    judge(&[case(
        "system CA named like a bundled root",
        &[&root],
        &[&leaf],
        Source::SslCertFile,
        true,
    )]);
}
