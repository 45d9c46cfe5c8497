//! Configuration: the documented defaults (`deploy/coursewire.toml`, embedded), then a TOML file,
//! then `COURSEWIRE_*` environment variables, then validation. Secrets are wrapped so that
//! `Debug` and logs never show them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The default configuration file, documented key by key; `coursewire config print-default`.
pub const DEFAULT_FILE: &str = include_str!("../../../deploy/coursewire.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub canvas: CanvasConfig,
    pub ingest: IngestConfig,
    pub processor: ProcessorConfig,
    pub api: ApiConfig,
    pub delivery: DeliveryConfig,
    pub nats: NatsConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub shutdown_grace_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanvasConfig {
    pub jwks_url: String,
    pub jwks_min_refresh_seconds: u64,
    pub allow_unsigned: bool,
    pub leeway_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub rejected_log_rows: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorConfig {
    pub enabled: bool,
    pub workers: usize,
    pub lease_seconds: u64,
    pub max_attempts: i64,
    pub idle_poll_ms: u64,
    pub lanes_per_claim: usize,
    pub max_rows_per_lane: usize,
    pub batch_rows: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    pub enabled: bool,
    pub concurrency: usize,
    pub timeout_seconds: u64,
    pub idle_poll_ms: u64,
    pub disable_after_seconds: u64,
    pub retry_schedule_ms: Vec<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub token: Secret,
    pub max_wait_seconds: u64,
}

/// A secret (API token, signing secret) that `Debug` and `Display` never show.
#[derive(Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(unset)"
        } else {
            "Secret(***)"
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub filter: String,
}

/// A database URL whose password, if any, never appears in `Debug` or `Display`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The real URL, for connecting. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        let Some((userinfo, host)) = rest.rsplit_once('@') else {
            return self.0.clone();
        };
        match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => self.0.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Config {
    /// The documented defaults alone.
    pub fn defaults() -> anyhow::Result<Self> {
        toml::from_str(DEFAULT_FILE).context("the embedded default configuration is invalid")
    }

    /// Defaults, then `file` (if any), then the process environment, then validation.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// Like [`Config::load`] with an explicit environment, so tests need not mutate the process.
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> anyhow::Result<Self> {
        let mut merged: toml::Table = toml::from_str(DEFAULT_FILE)?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let overlay: toml::Table = toml::from_str(&text)
                .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
            merge(&mut merged, overlay);
        }
        let mut config: Config = merged
            .try_into()
            .context("invalid configuration (check key names and value types)")?;
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &[(String, String)]) -> anyhow::Result<()> {
        for (key, value) in env {
            match key.as_str() {
                "COURSEWIRE_DATABASE_URL" => self.database.url = DatabaseUrl::new(value.clone()),
                "COURSEWIRE_LISTEN" => {
                    self.server.listen = value
                        .parse()
                        .with_context(|| format!("COURSEWIRE_LISTEN={value:?} is not ADDR:PORT"))?
                }
                "COURSEWIRE_CANVAS_JWKS_URL" => self.canvas.jwks_url = value.clone(),
                "COURSEWIRE_CANVAS_ALLOW_UNSIGNED" => {
                    self.canvas.allow_unsigned = parse_bool(key, value)?
                }
                "COURSEWIRE_INGEST_MAX_BODY_BYTES" => {
                    self.ingest.max_body_bytes = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a byte count"))?
                }
                "COURSEWIRE_PROCESSOR_ENABLED" => self.processor.enabled = parse_bool(key, value)?,
                "COURSEWIRE_PROCESSOR_WORKERS" => {
                    self.processor.workers = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a worker count"))?
                }
                "COURSEWIRE_PROCESSOR_LEASE_SECONDS" => {
                    self.processor.lease_seconds = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a number of seconds"))?
                }
                "COURSEWIRE_DELIVERY_ENABLED" => self.delivery.enabled = parse_bool(key, value)?,
                "COURSEWIRE_DELIVERY_DISABLE_AFTER_SECONDS" => {
                    self.delivery.disable_after_seconds = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a number of seconds"))?
                }
                "COURSEWIRE_DELIVERY_TIMEOUT_SECONDS" => {
                    self.delivery.timeout_seconds = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a number of seconds"))?
                }
                "COURSEWIRE_NATS_URL" => self.nats.url = value.clone(),
                "COURSEWIRE_API_TOKEN" => self.api.token = Secret::new(value.clone()),
                "COURSEWIRE_LOG" => self.log.filter = value.clone(),
                _ => {}
            }
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            bail!(
                "database.url must start with sqlite:// or postgres:// (got {})",
                self.database.url
            );
        }
        if !(self.canvas.jwks_url.starts_with("https://")
            || self.canvas.jwks_url.starts_with("http://"))
        {
            bail!("canvas.jwks_url must be an http(s) URL");
        }
        if self.ingest.max_body_bytes == 0 {
            bail!("ingest.max_body_bytes must be positive");
        }
        if self.ingest.max_batch == 0 {
            bail!("ingest.max_batch must be positive");
        }
        if self.ingest.rejected_log_rows < 0 {
            bail!("ingest.rejected_log_rows must not be negative");
        }
        let p = &self.processor;
        if p.workers == 0 || p.lanes_per_claim == 0 || p.max_rows_per_lane == 0 || p.batch_rows == 0
        {
            bail!(
                "processor.workers, lanes_per_claim, max_rows_per_lane and batch_rows must be positive"
            );
        }
        if p.lease_seconds == 0 || p.max_attempts < 1 || p.idle_poll_ms == 0 {
            bail!("processor.lease_seconds, max_attempts and idle_poll_ms must be positive");
        }
        let d = &self.delivery;
        if d.concurrency == 0 || d.timeout_seconds == 0 || d.idle_poll_ms == 0 {
            bail!("delivery.concurrency, timeout_seconds and idle_poll_ms must be positive");
        }
        if !self.nats.url.is_empty()
            && (self.nats.stream.is_empty() || self.nats.subject_prefix.is_empty())
        {
            bail!("nats.stream and nats.subject_prefix must be set when nats.url is");
        }
        Ok(())
    }
}

fn parse_bool(key: &str, value: &str) -> anyhow::Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{key}={value:?} is not a boolean (true/false)"),
    }
}

/// Overlays `overlay` onto `base`, table by table, so a file may set one key of a section.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table)) => {
                merge(base_table, overlay_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_parse_and_validate() {
        let config = Config::load_from(None, &[]).unwrap();
        assert_eq!(config.server.listen.port(), 8080);
        assert!(!config.canvas.allow_unsigned);
        assert_eq!(config.ingest.max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn file_overrides_one_key_and_env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[canvas]\nallow_unsigned = true\n[database]\nurl = \"sqlite://x.db\"\n",
        )
        .unwrap();
        let config = Config::load_from(
            Some(&path),
            &env(&[("COURSEWIRE_DATABASE_URL", "postgres://u:hunter2@h/db")]),
        )
        .unwrap();
        assert!(config.canvas.allow_unsigned);
        assert_eq!(
            config.canvas.leeway_seconds, 60,
            "untouched keys keep defaults"
        );
        assert_eq!(config.database.url.expose(), "postgres://u:hunter2@h/db");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config = Config::load_from(
            None,
            &env(&[
                ("COURSEWIRE_DATABASE_URL", "postgres://u:hunter2@h/db"),
                ("COURSEWIRE_API_TOKEN", "tok-sekrit"),
            ]),
        )
        .unwrap();
        assert_eq!(config.api.token.expose(), "tok-sekrit");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("tok-sekrit"), "{shown}");
        assert!(shown.contains("postgres://u:***@h/db"));
    }

    #[test]
    fn processor_settings_default_and_override() {
        let config = Config::load_from(None, &[]).unwrap();
        assert!(config.processor.enabled);
        assert_eq!(config.processor.lease_seconds, 30);
        assert_eq!(config.processor.max_attempts, 8);
        let config = Config::load_from(
            None,
            &env(&[
                ("COURSEWIRE_PROCESSOR_ENABLED", "false"),
                ("COURSEWIRE_PROCESSOR_WORKERS", "3"),
                ("COURSEWIRE_PROCESSOR_LEASE_SECONDS", "2"),
            ]),
        )
        .unwrap();
        assert!(!config.processor.enabled);
        assert_eq!(config.processor.workers, 3);
        assert_eq!(config.processor.lease_seconds, 2);
        let err =
            Config::load_from(None, &env(&[("COURSEWIRE_PROCESSOR_WORKERS", "0")])).unwrap_err();
        assert!(format!("{err:#}").contains("processor.workers"), "{err:#}");
    }

    #[test]
    fn delivery_and_nats_settings_default_and_override() {
        let config = Config::load_from(None, &[]).unwrap();
        assert!(config.delivery.enabled);
        assert_eq!(config.delivery.timeout_seconds, 15);
        assert_eq!(config.delivery.disable_after_seconds, 86_400);
        assert_eq!(
            config.delivery.retry_schedule_ms,
            crate::bus::delivery::schedule::DEFAULT_SCHEDULE_MS.to_vec()
        );
        assert!(config.nats.url.is_empty(), "NATS is off by default");
        let config = Config::load_from(
            None,
            &env(&[
                ("COURSEWIRE_DELIVERY_ENABLED", "false"),
                ("COURSEWIRE_DELIVERY_TIMEOUT_SECONDS", "3"),
                ("COURSEWIRE_DELIVERY_DISABLE_AFTER_SECONDS", "60"),
                ("COURSEWIRE_NATS_URL", "nats://127.0.0.1:4222"),
            ]),
        )
        .unwrap();
        assert!(!config.delivery.enabled);
        assert_eq!(config.delivery.timeout_seconds, 3);
        assert_eq!(config.delivery.disable_after_seconds, 60);
        assert_eq!(config.nats.url, "nats://127.0.0.1:4222");
        let err = Config::load_from(None, &env(&[("COURSEWIRE_DELIVERY_TIMEOUT_SECONDS", "0")]))
            .unwrap_err();
        assert!(format!("{err:#}").contains("delivery."), "{err:#}");
    }

    #[test]
    fn bad_values_give_clear_errors() {
        let err = Config::load_from(None, &env(&[("COURSEWIRE_LISTEN", "nope")])).unwrap_err();
        assert!(format!("{err:#}").contains("COURSEWIRE_LISTEN"));
        let err =
            Config::load_from(None, &env(&[("COURSEWIRE_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(format!("{err:#}").contains("database.url"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[canvas]\nallow_unsignd = true\n").unwrap();
        let err = Config::load_from(Some(&path), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("allow_unsignd"), "{err:#}");
    }
}
