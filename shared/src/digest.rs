//! Short content digests: SHA-256, hex, cut to the length a key needs.

use sha2::{Digest, Sha256};

/// The first `hex_len` hex digits (at most 64) of the SHA-256 of `bytes`.
pub fn short_hex(bytes: &[u8], hex_len: usize) -> String {
    let mut hex = hex::encode(Sha256::digest(bytes));
    hex.truncate(hex_len);
    hex
}
