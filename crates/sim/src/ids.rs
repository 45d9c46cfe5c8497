//! Identifiers and seeded randomness. Every random choice in the simulator draws from a
//! ChaCha stream derived from (seed, purpose), so the same seed always yields the same
//! university, timeline and keys, and adding a new purpose never shifts an existing stream.
//! Canvas ids: REST uses local integers; Live Events use strings, either global
//! (`shard × 10^13 + local`, shard 2107 as in the published examples) or local.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

pub const SHARD: u64 = 2107;
pub const SHARD_FACTOR: u64 = 10_000_000_000_000;

/// `"21070000000000565"` for local id 565.
pub fn global_id(local: u64) -> String {
    (SHARD * SHARD_FACTOR + local).to_string()
}

pub fn local_id(local: u64) -> String {
    local.to_string()
}

/// A ChaCha20 stream for one purpose under one seed.
pub fn rng(seed: u64, purpose: &str) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    ChaCha20Rng::from_seed(h.finalize().into())
}

/// A v4-shaped UUID drawn from `rng`.
pub fn uuid(rng: &mut impl RngCore) -> uuid::Uuid {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// Canvas-style 40-character alphanumeric uuid (courses, users, root account).
pub fn canvas_uuid(rng: &mut impl RngCore) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..40)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

/// Hex string of `bytes` random bytes (session ids, opaque tokens).
pub fn hex_token(rng: &mut impl RngCore, bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Short label for a credential in counters and logs: never the credential itself.
pub fn token_label(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    format!("tok_{}", &hex::encode(digest)[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_match_published_examples() {
        assert_eq!(global_id(565), "21070000000000565");
        assert_eq!(global_id(46825), "21070000000046825");
    }

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u32> = (0..4).map(|_| rng(7, "x").next_u32()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(rng(7, "x").next_u64(), rng(7, "y").next_u64());
        assert_ne!(rng(7, "x").next_u64(), rng(8, "x").next_u64());
        assert_eq!(canvas_uuid(&mut rng(1, "u")).len(), 40);
    }
}
