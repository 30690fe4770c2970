//! Webhook signature checks, over the raw body, in constant time, before any parsing.
//!
//! Coupa `X-Coupa-Signature` and Basware `X-BWAPI-Signature-256` are both HMAC-SHA256 of the raw
//! body with a shared secret. Product decision (`../shared/apis/README.md`): accept the digest as
//! hex or base64, with or without a `sha256=` prefix.
//!
//! SAP Concur's `Concur-Signature` is an RSA-PSS signature (SHA-256, MGF1-SHA-256), base64, over
//! the raw body, verified with Concur's public key (concur.md §2.4 [C]: salt length = max, as a
//! public receiver verifies it; the digest's length is accepted too).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the public key to verify {0} with is not an RSA public key (PEM or base64 DER)")]
    BadKey(&'static str),
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header is not a hex or base64 digest")]
    Malformed(&'static str),
    #[error("the {0} header does not match the body")]
    Mismatch(&'static str),
}

/// Verifies `header_value` as HMAC-SHA256(secret, body). `header_name` only names the header in
/// errors.
pub fn verify_hmac_sha256(
    header_name: &'static str,
    secret: &[u8],
    body: &[u8],
    header_value: Option<&str>,
) -> Result<(), SignatureError> {
    let raw = header_value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::Missing(header_name))?;
    let digest = raw.strip_prefix("sha256=").unwrap_or(raw);
    let expected = decode_digest(digest).ok_or(SignatureError::Malformed(header_name))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch(header_name))
}

fn decode_digest(s: &str) -> Option<Vec<u8>> {
    if s.len() == 64
        && let Ok(bytes) = hex::decode(s)
    {
        return Some(bytes);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    b64.decode(s).ok().filter(|b| b.len() == 32)
}

/// An RSA public key from PEM, SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`),
/// or the base64 of either's DER on one line (a secret that must fit one line).
pub fn rsa_public_key(pem: &str) -> Option<rsa::RsaPublicKey> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let pem = pem.trim();
    if pem.starts_with("-----BEGIN") {
        return rsa::RsaPublicKey::from_public_key_pem(pem)
            .ok()
            .or_else(|| rsa::RsaPublicKey::from_pkcs1_pem(pem).ok());
    }
    let compact: String = pem.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    rsa::RsaPublicKey::from_public_key_der(&der)
        .ok()
        .or_else(|| rsa::RsaPublicKey::from_pkcs1_der(&der).ok())
}

/// Verifies `header_value` (base64) as an RSA-PSS SHA-256 signature of `body` by the key in
/// `public_key_pem`. `header_name` only names the header in errors.
pub fn verify_rsa_pss_sha256(
    header_name: &'static str,
    public_key_pem: &str,
    body: &[u8],
    header_value: Option<&str>,
) -> Result<(), SignatureError> {
    use rsa::signature::Verifier;
    use rsa::traits::PublicKeyParts;
    let raw = header_value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::Missing(header_name))?;
    let key = rsa_public_key(public_key_pem).ok_or(SignatureError::BadKey(header_name))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| SignatureError::Malformed(header_name))?;
    let signature = rsa::pss::Signature::try_from(bytes.as_slice())
        .map_err(|_| SignatureError::Malformed(header_name))?;
    let em_len = (key.n().bits() - 1).div_ceil(8);
    let max_salt = em_len.saturating_sub(32 + 2);
    for salt in [max_salt, 32] {
        let verifier = rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(key.clone(), salt);
        if verifier.verify(body, &signature).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch(header_name))
}

/// Signs `body` the way [`verify_hmac_sha256`] checks it (lowercase hex with `sha256=`), for the
/// simulators and tests.
pub fn sign_hmac_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "X-Coupa-Signature";

    #[test]
    fn good_hex_signature_verifies() {
        let sig = sign_hmac_sha256(b"k", b"{}");
        assert_eq!(verify_hmac_sha256(H, b"k", b"{}", Some(&sig)), Ok(()));
    }

    #[test]
    fn base64_signature_without_prefix_verifies() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"body");
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(verify_hmac_sha256(H, b"k", b"body", Some(&sig)), Ok(()));
    }

    #[test]
    fn signature_of_another_body_is_refused() {
        let sig = sign_hmac_sha256(b"k", b"{\"id\":1}");
        assert_eq!(
            verify_hmac_sha256(H, b"k", b"{\"id\":2}", Some(&sig)),
            Err(SignatureError::Mismatch(H))
        );
    }

    #[test]
    fn signature_with_another_secret_is_refused() {
        let sig = sign_hmac_sha256(b"other", b"{}");
        assert_eq!(
            verify_hmac_sha256(H, b"k", b"{}", Some(&sig)),
            Err(SignatureError::Mismatch(H))
        );
    }

    #[test]
    fn missing_and_garbage_signatures_are_refused() {
        assert_eq!(
            verify_hmac_sha256(H, b"k", b"{}", None),
            Err(SignatureError::Missing(H))
        );
        assert_eq!(
            verify_hmac_sha256(H, b"k", b"{}", Some("  ")),
            Err(SignatureError::Missing(H))
        );
        assert_eq!(
            verify_hmac_sha256(H, b"k", b"{}", Some("sha256=zz")),
            Err(SignatureError::Malformed(H))
        );
    }
}
