//! The few facts of an X.509 certificate that decide whether it may act as
//! an issuer: `basicConstraints`, `keyUsage`, the validity period, and
//! whether it is self-issued.
//!
//! rustls-webpki parses the whole chain, but reduces a trust anchor to its
//! subject, key and name constraints and never reads an issuer's key usage,
//! so these facts are read here. Only this much DER is walked (the
//! `TBSCertificate` header fields and two extensions); a general X.509 crate
//! would cost more than the static binary's size budget has left for a
//! reader of four fields. Anything malformed is an error: a certificate we
//! cannot read is never admitted as an issuer.

/// Why a certificate could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// What [`facts`] reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// `notBefore`, seconds since the Unix epoch.
    pub not_before: i64,
    /// `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
    /// `basicConstraints cA` (false when the extension is absent).
    pub is_ca: bool,
    /// `basicConstraints pathLenConstraint`.
    pub path_len: Option<u64>,
    /// `keyUsage keyCertSign`, or `None` when there is no `keyUsage`.
    pub key_cert_sign: Option<bool>,
    /// Issuer and subject names are the same bytes.
    pub self_issued: bool,
}

impl CertFacts {
    /// RFC 5280 §4.2.1.9 / §4.2.1.3: a CA certificate, allowed to sign
    /// certificates when it restricts its key usage.
    pub fn can_issue(&self) -> bool {
        self.is_ca && self.key_cert_sign != Some(false)
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xA0;
const ISSUER_UID: u8 = 0x81;
const SUBJECT_UID: u8 = 0x82;
const EXTENSIONS: u8 = 0xA3;
/// 2.5.29.19 and 2.5.29.15, as DER OID contents.
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x13];
const KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x0F];

/// Reads the facts of a DER certificate.
pub fn facts(cert: &[u8]) -> Result<CertFacts, Malformed> {
    let mut outer = Reader(cert);
    let mut certificate = outer.expect(SEQUENCE)?;
    outer.end()?;
    let mut tbs = certificate.expect(SEQUENCE)?;
    tbs.optional(VERSION)?;
    tbs.expect(INTEGER)?;
    tbs.expect(SEQUENCE)?; // signature algorithm
    let issuer = tbs.expect(SEQUENCE)?.0;
    let mut validity = tbs.expect(SEQUENCE)?;
    let not_before = time(&mut validity)?;
    let not_after = time(&mut validity)?;
    validity.end()?;
    let subject = tbs.expect(SEQUENCE)?.0;
    tbs.expect(SEQUENCE)?; // subjectPublicKeyInfo
    tbs.optional(ISSUER_UID)?;
    tbs.optional(SUBJECT_UID)?;
    let mut facts = CertFacts {
        not_before,
        not_after,
        is_ca: false,
        path_len: None,
        key_cert_sign: None,
        self_issued: issuer == subject,
    };
    if let Some(mut wrapper) = tbs.optional(EXTENSIONS)? {
        let mut list = wrapper.expect(SEQUENCE)?;
        wrapper.end()?;
        while !list.is_empty() {
            extension(&mut list.expect(SEQUENCE)?, &mut facts)?;
        }
    }
    tbs.end()?;
    Ok(facts)
}

fn extension(ext: &mut Reader<'_>, facts: &mut CertFacts) -> Result<(), Malformed> {
    let id = ext.expect(OID)?.0;
    ext.optional(BOOLEAN)?; // critical
    let mut value = ext.expect(OCTET_STRING)?;
    ext.end()?;
    if id == BASIC_CONSTRAINTS {
        let mut bc = value.expect(SEQUENCE)?;
        value.end()?;
        facts.is_ca = match bc.optional(BOOLEAN)? {
            Some(b) => b.0 == [0xFF],
            None => false,
        };
        if let Some(n) = bc.optional(INTEGER)? {
            facts.path_len = Some(unsigned(n.0)?);
        }
        bc.end()?;
    } else if id == KEY_USAGE {
        let bits = value.expect(BIT_STRING)?.0;
        value.end()?;
        // First byte: unused bits; keyCertSign is bit 5 (MSB first).
        let first = bits.get(1).copied().ok_or(Malformed)?;
        facts.key_cert_sign = Some(first & 0x04 != 0);
    }
    Ok(())
}

fn unsigned(bytes: &[u8]) -> Result<u64, Malformed> {
    if bytes.is_empty() || bytes.len() > 8 || bytes[0] & 0x80 != 0 {
        return Err(Malformed);
    }
    Ok(bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b)))
}

fn time(r: &mut Reader<'_>) -> Result<i64, Malformed> {
    let (tag, value) = r.any()?;
    let (year, rest) = match tag {
        UTC_TIME => {
            let yy = digits(value.get(..2).ok_or(Malformed)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &value[2..])
        }
        GENERALIZED_TIME => (
            digits(value.get(..4).ok_or(Malformed)?)?,
            value.get(4..).ok_or(Malformed)?,
        ),
        _ => return Err(Malformed),
    };
    if rest.len() != 11 || rest[10] != b'Z' {
        return Err(Malformed);
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (h, m, s) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return Err(Malformed);
    }
    Ok(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

fn digits(s: &[u8]) -> Result<i64, Malformed> {
    s.iter().try_fold(0i64, |n, c| match c {
        b'0'..=b'9' => Ok(n * 10 + i64::from(c - b'0')),
        _ => Err(Malformed),
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A cursor over DER bytes: one tag-length-value at a time.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// The next element: its tag and contents.
    fn any(&mut self) -> Result<(u8, &'a [u8]), Malformed> {
        let (&tag, rest) = self.0.split_first().ok_or(Malformed)?;
        let (&first, mut rest) = rest.split_first().ok_or(Malformed)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7F);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(Malformed);
            }
            let (bytes, after) = rest.split_at(n);
            rest = after;
            bytes.iter().fold(0usize, |l, b| (l << 8) | usize::from(*b))
        };
        if rest.len() < len {
            return Err(Malformed);
        }
        let (value, after) = rest.split_at(len);
        self.0 = after;
        Ok((tag, value))
    }

    fn expect(&mut self, tag: u8) -> Result<Reader<'a>, Malformed> {
        match self.any()? {
            (t, value) if t == tag => Ok(Reader(value)),
            _ => Err(Malformed),
        }
    }

    fn optional(&mut self, tag: u8) -> Result<Option<Reader<'a>>, Malformed> {
        if self.0.first() == Some(&tag) {
            self.expect(tag).map(Some)
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 2), 20_789);
    }

    #[test]
    fn times_in_both_encodings() {
        let utc = [
            UTC_TIME, 13, b'4', b'9', b'1', b'2', b'3', b'1', b'2', b'3', b'5', b'9', b'5', b'9',
            b'Z',
        ];
        assert_eq!(time(&mut Reader(&utc)), Ok(2_524_607_999));
        let old = [
            UTC_TIME, 13, b'7', b'0', b'0', b'1', b'0', b'1', b'0', b'0', b'0', b'0', b'0', b'1',
            b'Z',
        ];
        assert_eq!(time(&mut Reader(&old)), Ok(1));
        let mut gen = vec![GENERALIZED_TIME, 15];
        gen.extend_from_slice(b"99991231235959Z");
        assert_eq!(time(&mut Reader(&gen)), Ok(253_402_300_799));
        let mut bad = vec![GENERALIZED_TIME, 15];
        bad.extend_from_slice(b"20261302000000Z");
        assert_eq!(time(&mut Reader(&bad)), Err(Malformed));
    }

    fn made(params: rcgen::CertificateParams) -> CertFacts {
        let key = rcgen::KeyPair::generate().unwrap();
        facts(params.self_signed(&key).unwrap().der()).unwrap()
    }

    #[test]
    fn reads_what_rcgen_wrote() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyUsagePurpose};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(3));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        ca.not_before = rcgen::date_time_ymd(2001, 2, 3);
        ca.not_after = rcgen::date_time_ymd(2051, 4, 5);
        let f = made(ca.clone());
        assert!(f.is_ca && f.can_issue() && f.self_issued);
        assert_eq!((f.path_len, f.key_cert_sign), (Some(3), Some(true)));
        assert_eq!(f.not_before, days_from_civil(2001, 2, 3) * 86_400);
        assert_eq!(f.not_after, days_from_civil(2051, 4, 5) * 86_400);

        ca.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
        let f = made(ca.clone());
        assert!(f.is_ca && !f.can_issue());
        assert_eq!(f.key_cert_sign, Some(false));

        ca.key_usages = Vec::new();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let f = made(ca.clone());
        assert!(f.can_issue());
        assert_eq!((f.path_len, f.key_cert_sign), (None, None));

        for not_ca in [IsCa::ExplicitNoCa, IsCa::NoCa] {
            ca.is_ca = not_ca;
            let f = made(ca.clone());
            assert!(!f.is_ca && !f.can_issue());
        }
    }

    #[test]
    fn truncated_and_trailing_input_is_malformed() {
        assert_eq!(facts(&[]), Err(Malformed));
        assert_eq!(facts(&[SEQUENCE, 0x82, 0x01]), Err(Malformed));
        assert_eq!(facts(&[SEQUENCE, 0, 0]), Err(Malformed));
    }
}
