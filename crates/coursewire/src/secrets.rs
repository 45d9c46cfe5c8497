//! Keeping credentials out of sight: URLs redacted wherever they are shown (config, logs,
//! `Debug`, API answers), and subscription signing secrets sealed at rest when
//! `secrets.key` is set.
//!
//! Sealing uses AES-256-GCM from `ring` (already the TLS provider, so no new code is built):
//! a stored secret becomes `enc:v1:<base64 of nonce ‖ ciphertext ‖ tag>`; rows written before
//! a key was set stay readable as they are, and are sealed when `serve` starts with a key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Query parameters whose values are credentials.
const SECRET_PARAMS: &[&str] = &[
    "password",
    "pass",
    "pwd",
    "token",
    "access_token",
    "refresh_token",
    "secret",
    "client_secret",
    "key",
    "api_key",
    "apikey",
    "sig",
    "signature",
    "auth",
    "credential",
    "credentials",
];

const MASK: &str = "***";

/// `url` with its credentials masked: the password of `user:password@` (or the whole user
/// part when there is no password: `nats://TOKEN@host` carries a token there), and the values
/// of query parameters such as `password`, `token` or `secret`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact_unparsed(url);
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some(MASK));
    } else if !parsed.username().is_empty() {
        let _ = parsed.set_username(MASK);
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let secret = SECRET_PARAMS.contains(&name.to_ascii_lowercase().as_str());
                (
                    name.into_owned(),
                    if secret {
                        MASK.into()
                    } else {
                        value.into_owned()
                    },
                )
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // The mask is shown as written, not percent-encoded.
    parsed.to_string().replace("%2A%2A%2A", MASK)
}

/// For text that is not a URL (a SQLite path, a typo): mask anything before an `@`.
fn redact_unparsed(text: &str) -> String {
    match text.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{MASK}@{host}"),
            None => text.to_owned(),
        },
        None => text.to_owned(),
    }
}

/// `Debug` for a URL field: the URL, redacted.
pub struct RedactedUrl<'a>(pub &'a str);

impl std::fmt::Debug for RedactedUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact_url(self.0))
    }
}

/// Serializes a URL field redacted (`#[serde(serialize_with = "...")]`).
pub fn serialize_redacted<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// What marks a sealed secret.
const SEALED_PREFIX: &str = "enc:v1:";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("secrets.key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error("a sealed secret cannot be opened without secrets.key (COURSEWIRE_SECRETS_KEY)")]
    NoKey,
    #[error("a sealed secret does not open with this secrets.key (another key, or damaged)")]
    WrongKey,
    #[error("cannot seal: the system random generator failed")]
    NoRandom,
}

/// The key that seals subscription secrets at rest (`secrets.key`), or none.
pub struct SecretsKey {
    key: Option<LessSafeKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsKey")
            .field("set", &self.key.is_some())
            .finish()
    }
}

impl SecretsKey {
    /// From `secrets.key`: empty for none, else base64 of 32 bytes.
    pub fn new(base64_key: &str) -> Result<Self, SealError> {
        let key = if base64_key.is_empty() {
            None
        } else {
            let bytes = STANDARD
                .decode(base64_key.trim())
                .map_err(|_| SealError::BadKey)?;
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::BadKey)?;
            Some(LessSafeKey::new(unbound))
        };
        Ok(Self {
            key,
            random: SystemRandom::new(),
        })
    }

    pub fn is_set(&self) -> bool {
        self.key.is_some()
    }

    /// `secret` as it is stored: sealed with the key, or as it is without one. Never sealed
    /// with a nonce that is not fresh: if the system generator fails, this fails.
    pub fn seal(&self, secret: &str) -> Result<String, SealError> {
        let Some(key) = &self.key else {
            return Ok(secret.to_owned());
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SealError::NoRandom)?;
        let mut sealed = secret.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut sealed,
        )
        .map_err(|_| SealError::NoRandom)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(out)))
    }

    /// The secret of a stored value (sealed or not).
    pub fn open(&self, stored: &str) -> Result<String, SealError> {
        let Some(sealed) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let key = self.key.as_ref().ok_or(SealError::NoKey)?;
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::WrongKey)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::WrongKey);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::WrongKey)?;
        let mut buffer = ciphertext.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::empty(), &mut buffer)
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::WrongKey)
    }

    /// Whether a stored value is sealed.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_masked() {
        for (url, shown) in [
            (
                "postgres://app:hunter2@db.internal:5432/cw",
                "postgres://app:***@db.internal:5432/cw",
            ),
            ("nats://s3cr3t-token@nats:4222", "nats://***@nats:4222"),
            (
                "https://hooks.example.edu/in?token=abc&x=1&Password=p",
                "https://hooks.example.edu/in?token=***&x=1&Password=***",
            ),
            ("https://canvas.example.edu", "https://canvas.example.edu/"),
            ("sqlite://coursewire.db", "sqlite://coursewire.db"),
            ("not a url://u:p@h", "not a url://***@h"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        assert_eq!(
            format!("{:?}", RedactedUrl("nats://u:p@h")),
            "\"nats://u:***@h\""
        );
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let key = SecretsKey::new(&STANDARD.encode([7u8; 32])).unwrap();
        let sealed = key.seal("whsec_abc").unwrap();
        assert!(SecretsKey::is_sealed(&sealed) && !sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            key.seal("whsec_abc").unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(key.open(&sealed).unwrap(), "whsec_abc");
        assert_eq!(key.open("whsec_plain").unwrap(), "whsec_plain");
        let other = SecretsKey::new(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(matches!(other.open(&sealed), Err(SealError::WrongKey)));
        let none = SecretsKey::new("").unwrap();
        assert!(matches!(none.open(&sealed), Err(SealError::NoKey)));
        assert_eq!(none.seal("whsec_abc").unwrap(), "whsec_abc");
        assert!(matches!(
            SecretsKey::new("c2hvcnQ="),
            Err(SealError::BadKey)
        ));
    }
}
