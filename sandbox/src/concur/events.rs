//! Signed `readyForIntegration` events (concur.md §2.4): the payload of the vendor sample,
//! signed in `Concur-Signature` as RSA-PSS (SHA-256, MGF1-SHA-256, salt length = max), base64,
//! over the raw body — the reading of a public receiver ([C] S-CN6).
//!
//! The key is the simulator's own (`event_key.pem`, made for it; it signs nothing else): the
//! connector is configured with [`ConcurSim::event_public_key_pem`] as Concur's public key.

use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::traits::PublicKeyParts;
use serde_json::json;
use sha2::Sha256;

use super::ConcurSim;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Concur-Signature";

const EVENT_KEY: &str = include_str!("event_key.pem");

fn private_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_pkcs8_pem(EVENT_KEY).expect("the simulator's event key")
}

/// rand 0.9's generator behind the rand_core 0.6 traits the `rsa` crate takes.
struct Rng;

impl rsa::rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        rand::random()
    }
    fn next_u64(&mut self) -> u64 {
        rand::random()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        rand::fill(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for Rng {}

/// `Concur-Signature` of `body` with `key`.
fn sign_with(key: rsa::RsaPrivateKey, body: &[u8]) -> String {
    let em_len = (key.n().bits() - 1).div_ceil(8);
    let salt = em_len - 32 - 2;
    let signer = rsa::pss::BlindedSigningKey::<Sha256>::new_with_salt_len(key, salt);
    let sig = signer.sign_with_rng(&mut Rng, body);
    base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
}

impl ConcurSim {
    /// Concur's public key as the connector is configured with it (SPKI PEM).
    pub fn event_public_key_pem(&self) -> String {
        private_key()
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM")
    }

    /// The same key as the base64 of its SPKI DER, on one line (how `mlc sandbox` prints it
    /// for `mlc secrets set`).
    pub fn event_public_key_base64(&self) -> String {
        let der = private_key()
            .to_public_key()
            .to_public_key_der()
            .expect("DER");
        base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
    }

    /// `Concur-Signature` of `body`.
    pub fn sign_event(&self, body: &[u8]) -> String {
        sign_with(private_key(), body)
    }

    /// The `{docType}.readyForIntegration` event of a document (the vendor sample's shape, with
    /// `facts.href` on an internal host, §2.4), and its signature.
    pub fn ready_event(&self, doc_type: &str, doc_id: &str) -> (Vec<u8>, String) {
        let body = json!({
            "id": uuid::Uuid::new_v4().to_string(), "data": null,
            "eventType": format!("{doc_type}.readyForIntegration"),
            "correlationId": uuid::Uuid::new_v4().simple().to_string(),
            "topic": "public.concur.financialintegration", "subtopic": "p0607623zrtt",
            "timeStamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
            "route": "stable",
            "facts": {
                "companyId": "1c3564d9-92bd-495a-a8c8-3aba068fff09",
                "documentId": doc_id,
                "href": format!("https://financial-integration.service.cnqr.tech/fi/v4/companies/transactiontypes/{doc_type}/transactions?docId={doc_id}"),
                "entityId": "p0607623zrtt"
            }
        })
        .to_string()
        .into_bytes();
        let sig = self.sign_event(&body);
        (body, sig)
    }

    /// Delivers the signed event of a document to `url` (ESS delivery, §2.4); the status.
    pub async fn deliver_event(&self, url: &str, doc_type: &str, doc_id: &str) -> u16 {
        let (body, sig) = self.ready_event(doc_type, doc_id);
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, sig)
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

/// Another key (a forger's), made for the tests like the simulator's.
const FORGER_KEY: &str = include_str!("forger_key.pem");

/// A well-formed signature of `body` by a key that is not the simulator's, for tests.
pub fn forged_signature(body: &[u8]) -> String {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(FORGER_KEY).expect("the forger's key");
    sign_with(key, body)
}
