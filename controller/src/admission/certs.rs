//! Self-signed certificates for the admission webhook: a throw-away CA and the serving
//! certificate it signs, and the checks that decide whether a stored pair is still good.
//!
//! The CA's private key is never kept: it signs one serving certificate and is dropped, so
//! nothing in the cluster can sign another certificate the apiserver would trust. Rotating
//! means a new CA; the previous CA stays in the bundle until its certificate expires, so a
//! controller still serving the old certificate is trusted while the new one reaches it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// Errors issuing or reading webhook certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// rcgen could not build a certificate.
    #[error("cannot issue the webhook certificate: {0}")]
    Issue(#[from] rcgen::Error),
    /// A subject name is neither a DNS name nor an IP address.
    #[error("`{0}` is not a DNS name or IP address a certificate can name")]
    Name(String),
    /// The validity overflows the calendar.
    #[error("cannot compute the certificate's validity: {0}")]
    Validity(String),
}

/// A serving certificate, its key, and the CA bundle that verifies it (all PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingCert {
    /// CA certificates: the issuer of `cert_pem` first, then at most one previous CA.
    pub ca_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// Its PKCS#8 private key.
    pub key_pem: String,
}

/// Issues a new CA and a serving certificate for `names` (DNS names or IP addresses), both
/// valid from yesterday (clock skew) for `validity`. `previous_ca_pem`, the bundle in use
/// so far, contributes its first certificate (the CA of the serving certificate being
/// replaced) when it is still valid, so both old and new serving certificates verify.
pub fn issue(
    names: &[String],
    validity: Duration,
    previous_ca_pem: Option<&str>,
    now: SystemTime,
) -> Result<ServingCert, CertError> {
    for name in names {
        ServerName::try_from(name.as_str()).map_err(|_| CertError::Name(name.clone()))?;
    }

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("tollgate webhook CA {}", unix_seconds(now)),
    );
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut ca, now, validity)?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(names.to_vec())?;
    leaf.distinguished_name = DistinguishedName::new();
    if let Some(first) = names.first() {
        leaf.distinguished_name
            .push(DnType::CommonName, first.clone());
    }
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    set_validity(&mut leaf, now, validity)?;
    let cert = leaf.signed_by(&key, &issuer)?;

    let mut ca_pem = ca_cert.pem();
    // One previous CA at most: an expired one left in the bundle only verifies nothing.
    if let Some(previous) = previous_ca_pem.and_then(first_pem_block) {
        ca_pem.push_str(&previous);
    }
    Ok(ServingCert {
        ca_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Why a stored serving certificate must be replaced, or `None` when it is good: it parses,
/// its key belongs to it, it names every one of `names`, and it chains to a CA in its
/// bundle both now and `renew_before` from now.
pub fn needs_renewal(
    current: &ServingCert,
    names: &[String],
    now: SystemTime,
    renew_before: Duration,
) -> Option<String> {
    let Some(leaf) = first_cert(current.cert_pem.as_bytes()) else {
        return Some("the Secret holds no serving certificate".to_owned());
    };
    let Ok(key) = PrivateKeyDer::from_pem_slice(current.key_pem.as_bytes()) else {
        return Some("the Secret holds no readable private key".to_owned());
    };
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    if let Err(e) =
        tokio_rustls::rustls::sign::CertifiedKey::from_der(vec![leaf.clone()], key, &provider)
    {
        return Some(format!(
            "the private key does not belong to the certificate ({e})"
        ));
    }
    if let Err(e) = verifies(&leaf, current.ca_pem.as_bytes(), now) {
        return Some(format!(
            "the certificate does not verify against ca.crt ({e})"
        ));
    }
    if verifies(&leaf, current.ca_pem.as_bytes(), now + renew_before).is_err() {
        return Some(format!(
            "the certificate or its CA expires within {} days",
            renew_before.as_secs() / 86_400
        ));
    }
    let Ok(end_entity) = webpki::EndEntityCert::try_from(&leaf) else {
        return Some("the serving certificate cannot be parsed".to_owned());
    };
    for name in names {
        let valid = ServerName::try_from(name.as_str())
            .ok()
            .is_some_and(|server| end_entity.verify_is_valid_for_subject_name(&server).is_ok());
        if !valid {
            return Some(format!("the certificate does not name {name}"));
        }
    }
    None
}

/// Checks that the serving certificate `leaf` chains to one of the PEM CA certificates in
/// `ca_bundle_pem` at `at`; the error says why not.
pub fn verifies(
    leaf: &CertificateDer<'_>,
    ca_bundle_pem: &[u8],
    at: SystemTime,
) -> Result<(), String> {
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca_bundle_pem)
        .filter_map(Result::ok)
        .collect();
    if cas.is_empty() {
        return Err("the CA bundle holds no PEM certificate".to_owned());
    }
    let anchors: Vec<_> = cas
        .iter()
        .filter_map(|ca| webpki::anchor_from_trusted_cert(ca).ok())
        .collect();
    let end_entity = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    let at = at
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("clock before 1970: {e}"))?;
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &[],
            UnixTime::since_unix_epoch(at),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

/// The first PEM certificate in `pem`.
pub fn first_cert(pem: &[u8]) -> Option<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .next()
        .and_then(Result::ok)
}

/// The first PEM certificate block of `pem`, as text.
fn first_pem_block(pem: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN)?;
    let end = pem[start..].find(END)? + start + END.len();
    Some(format!("{}\n", &pem[start..end]))
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Valid from the start of yesterday (UTC; clock skew between machines) to the end of the
/// day `validity` from now.
fn set_validity(
    params: &mut CertificateParams,
    now: SystemTime,
    validity: Duration,
) -> Result<(), CertError> {
    let day = |at: SystemTime| -> Result<jiff::civil::Date, CertError> {
        let ts = jiff::Timestamp::try_from(at).map_err(|e| CertError::Validity(e.to_string()))?;
        Ok(ts.to_zoned(jiff::tz::TimeZone::UTC).date())
    };
    let from = day(now)?
        .yesterday()
        .map_err(|e| CertError::Validity(e.to_string()))?;
    let until = day(now + validity)?
        .tomorrow()
        .map_err(|e| CertError::Validity(e.to_string()))?;
    params.not_before = rcgen::date_time_ymd(
        i32::from(from.year()),
        u8::try_from(from.month()).unwrap_or(1),
        u8::try_from(from.day()).unwrap_or(1),
    );
    params.not_after = rcgen::date_time_ymd(
        i32::from(until.year()),
        u8::try_from(until.month()).unwrap_or(1),
        u8::try_from(until.day()).unwrap_or(1),
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn names() -> Vec<String> {
        vec![
            "tollgate-webhook.tollgate-system.svc".to_owned(),
            "127.0.0.1".to_owned(),
        ]
    }

    #[test]
    fn issued_certificates_verify_and_name_their_subjects() {
        let now = SystemTime::now();
        let cert = issue(&names(), 365 * DAY, None, now).unwrap();
        assert_eq!(needs_renewal(&cert, &names(), now, 30 * DAY), None);
        let leaf = first_cert(cert.cert_pem.as_bytes()).unwrap();
        verifies(&leaf, cert.ca_pem.as_bytes(), now).unwrap();
        // A name it was not issued for.
        let other = vec!["other.svc".to_owned()];
        assert!(
            needs_renewal(&cert, &other, now, 30 * DAY)
                .unwrap()
                .contains("does not name other.svc")
        );
    }

    #[test]
    fn near_expiry_and_foreign_pairs_need_renewal() {
        let now = SystemTime::now();
        let cert = issue(&names(), 10 * DAY, None, now).unwrap();
        let why = needs_renewal(&cert, &names(), now, 30 * DAY).unwrap();
        assert!(why.contains("expires within 30 days"), "{why}");

        let other = issue(&names(), 365 * DAY, None, now).unwrap();
        let mixed = ServingCert {
            key_pem: other.key_pem.clone(),
            ..cert.clone()
        };
        let why = needs_renewal(&mixed, &names(), now, DAY).unwrap();
        assert!(why.contains("does not belong"), "{why}");
        let wrong_ca = ServingCert {
            ca_pem: other.ca_pem.clone(),
            ..cert
        };
        let why = needs_renewal(&wrong_ca, &names(), now, DAY).unwrap();
        assert!(why.contains("does not verify against ca.crt"), "{why}");
    }

    #[test]
    fn rotation_keeps_the_previous_ca_so_the_old_certificate_still_verifies() {
        let now = SystemTime::now();
        let old = issue(&names(), 365 * DAY, None, now).unwrap();
        let new = issue(&names(), 365 * DAY, Some(&old.ca_pem), now).unwrap();
        assert_eq!(new.ca_pem.matches("BEGIN CERTIFICATE").count(), 2);
        for cert in [&old, &new] {
            let leaf = first_cert(cert.cert_pem.as_bytes()).unwrap();
            verifies(&leaf, new.ca_pem.as_bytes(), now).unwrap();
        }
        // Only one previous CA is carried: a third rotation drops the first.
        let third = issue(&names(), 365 * DAY, Some(&new.ca_pem), now).unwrap();
        assert_eq!(third.ca_pem.matches("BEGIN CERTIFICATE").count(), 2);
        let first = first_cert(old.cert_pem.as_bytes()).unwrap();
        assert!(verifies(&first, third.ca_pem.as_bytes(), now).is_err());
    }

    #[test]
    fn the_certificate_works_for_rustls() {
        let cert = issue(&names(), DAY, None, SystemTime::now()).unwrap();
        let leaf = first_cert(cert.cert_pem.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
        let provider = tokio_rustls::rustls::crypto::ring::default_provider();
        tokio_rustls::rustls::sign::CertifiedKey::from_der(vec![leaf], key, &provider).unwrap();
        assert!(matches!(
            issue(&["not a name!".to_owned()], DAY, None, SystemTime::now()),
            Err(CertError::Name(_))
        ));
    }
}
