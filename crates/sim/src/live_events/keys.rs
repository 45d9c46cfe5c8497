//! Live Events signing keys. Like Instructure's JWKS, the ring serves the previous, current
//! and next RSA keys; rotation makes next current. Key n is RSA-2048 generated from a ChaCha
//! stream seeded by (seed, n), so the same seed gives the same keys and kids; keys are made
//! on first use (generation takes a moment) and cached.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use crate::ids;

pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    n: String,
    e: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn generate(seed: u64, index: u32) -> anyhow::Result<SigningKey> {
        let mut rng = ids::rng(seed, &format!("jwks-key-{index}"));
        let key = rsa::RsaPrivateKey::new(&mut rng, 2048)?;
        let der = key.to_pkcs1_der()?;
        Ok(SigningKey {
            kid: format!("sim-{seed:x}-{index}"),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        })
    }

    fn jwk(&self) -> Value {
        json!({ "kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": self.n, "e": self.e })
    }

    /// Compact JWS (RS256) of `claims`.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

#[derive(Debug)]
pub struct KeyRing {
    seed: u64,
    state: Mutex<RingState>,
}

#[derive(Debug)]
struct RingState {
    current: u32,
    cache: BTreeMap<u32, Arc<SigningKey>>,
}

impl KeyRing {
    pub fn new(seed: u64) -> KeyRing {
        KeyRing {
            seed,
            state: Mutex::new(RingState {
                current: 1,
                cache: BTreeMap::new(),
            }),
        }
    }

    fn key(&self, index: u32) -> anyhow::Result<Arc<SigningKey>> {
        if let Some(k) = self.lock().cache.get(&index) {
            return Ok(k.clone());
        }
        // Generate outside the lock: it takes a while and other keys may be wanted meanwhile.
        let key = Arc::new(SigningKey::generate(self.seed, index)?);
        Ok(self.lock().cache.entry(index).or_insert(key).clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn current(&self) -> anyhow::Result<Arc<SigningKey>> {
        let index = self.lock().current;
        self.key(index)
    }

    /// `{"keys":[previous, current, next]}`.
    pub fn jwks(&self) -> anyhow::Result<Value> {
        let current = self.lock().current;
        let keys = [current - 1, current, current + 1]
            .into_iter()
            .map(|i| self.key(i).map(|k| k.jwk()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(json!({ "keys": keys }))
    }

    /// Next becomes current; a new next is published; the oldest key is dropped.
    pub fn rotate(&self) {
        let mut st = self.lock();
        st.current += 1;
        let keep = st.current - 1;
        st.cache.retain(|i, _| *i >= keep);
    }

    pub fn current_kid(&self) -> String {
        let index = self.lock().current;
        format!("sim-{:x}-{index}", self.seed)
    }
}
