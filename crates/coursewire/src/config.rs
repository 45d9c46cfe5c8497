//! Configuration: the documented defaults (`deploy/coursewire.toml`, embedded), then a TOML file,
//! then `COURSEWIRE_*` environment variables, then validation. Secrets are wrapped so that
//! `Debug` and logs never show them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::secrets::RedactedUrl;

/// The default configuration file, documented key by key; `coursewire config print-default`.
pub const DEFAULT_FILE: &str = include_str!("../../../deploy/coursewire.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub canvas: CanvasConfig,
    pub panopto: PanoptoConfig,
    pub ingest: IngestConfig,
    pub processor: ProcessorConfig,
    pub api: ApiConfig,
    pub delivery: DeliveryConfig,
    pub nats: NatsConfig,
    pub log: LogConfig,
    pub reconcile: ReconcileConfig,
    pub university: UniversityConfig,
    pub secrets: SecretsConfig,
    pub clock: ClockConfig,
    pub workflow: WorkflowConfig,
    /// What the loaded file or environment said in a deprecated way, to be logged once
    /// tracing is up.
    #[serde(skip)]
    pub deprecations: Vec<String>,
}

/// `[workflow]`: the recording workflow's command executor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    pub enabled: bool,
    pub lms_provider: String,
    pub batch: u32,
    pub lease_seconds: u64,
    pub retry_seconds: u64,
    pub max_attempts: u32,
    pub idle_seconds: u64,
}

/// `[clock]`: which clock `serve` reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// A simulator's base URL whose clock to follow; empty: the wall clock.
    pub follow: String,
}

/// `[secrets]`: sealing subscription signing secrets at rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Base64 of 32 random bytes; empty: secrets are stored as they are (with a warning).
    pub key: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// `/metrics` on its own listener instead of `listen`; empty: on `listen`.
    pub metrics_listen: String,
    pub shutdown_grace_seconds: u64,
    /// A connection that has not sent a whole request head by then is closed (idle
    /// keep-alive connections too).
    pub header_read_timeout_seconds: u64,
    /// A request whose body has not arrived by then is answered 408.
    pub body_timeout_seconds: u64,
    /// A request not answered by then is answered 408 (above `api.max_wait_seconds`).
    pub request_timeout_seconds: u64,
    /// Connections served at once; more wait in the kernel's accept queue, holding no file.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanvasConfig {
    pub jwks_url: String,
    pub jwks_min_refresh_seconds: u64,
    /// The JWKS is refetched this often even when every `kid` is known.
    pub jwks_refresh_seconds: u64,
    /// A key the JWKS stopped serving is still accepted this long.
    pub jwks_key_grace_seconds: u64,
    pub allow_unsigned: bool,
    pub leeway_seconds: u64,
    /// A signed event whose `iat` is older than this is refused as stale.
    pub max_token_age_seconds: u64,
    /// The root accounts (`root_account_uuid`) whose events are ours. Instructure's one JWKS
    /// signs every customer's events, so the signature alone does not say whose they are.
    pub account_uuids: Vec<String>,
    pub api: CanvasApiConfig,
}

impl CanvasConfig {
    /// What `serve` needs before it takes Live Events: signed events bound to our root
    /// account(s).
    pub fn require_for_serve(&self) -> anyhow::Result<()> {
        if !self.allow_unsigned && self.account_uuids.is_empty() {
            bail!(
                "canvas.account_uuids is empty: set it (env COURSEWIRE_CANVAS_ACCOUNT_UUIDS, \
                 comma-separated) to your Canvas root account's uuid, or every Canvas customer's \
                 signed events would be accepted. An admin finds it in GET /api/v1/accounts/self \
                 (field `uuid`), or as metadata.root_account_uuid in any Live Event \
                 (`coursewire decode FILE` shows it)"
            );
        }
        Ok(())
    }
}

/// `[canvas.api]`: the Canvas REST/GraphQL API. One client and one quota governor per process
/// (per credential), shared by everything that calls Canvas.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanvasApiConfig {
    /// The Canvas base URL (`https://canvas.example.edu`).
    pub url: String,
    /// The root account whose courses are reconciled.
    pub account_id: u64,
    pub token: Secret,
    pub oauth_client_id: String,
    pub oauth_client_secret: Secret,
    pub oauth_refresh_token: Secret,
    /// Requests in flight at most (the quota governor may hold it lower).
    pub concurrency: usize,
}

/// `[panopto]`: the Panopto site and its API client. One client, with one pacer, per process,
/// shared by the poller and (next) the workflow.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanoptoConfig {
    pub url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub username: String,
    pub password: Secret,
    pub token: Secret,
    pub soap_auth: PanoptoSoapAuth,
    pub application_key: Secret,
    pub per_second: u32,
    pub per_minute: u32,
    pub per_hour: u32,
    pub usable_share: f64,
    pub poll: PanoptoPollConfig,
}

/// How SOAP calls authenticate (`panopto.soap_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanoptoSoapAuth {
    Password,
    AuthCode,
    AccessToken,
}

/// `[panopto.poll]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanoptoPollConfig {
    pub enabled: bool,
    pub interval_seconds: u64,
    pub lease_seconds: u64,
    pub first_lookback_hours: u64,
    pub recorders_every_seconds: u64,
}

impl fmt::Debug for PanoptoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanoptoConfig")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("token", &self.token)
            .field("soap_auth", &self.soap_auth)
            .field("application_key", &self.application_key)
            .field("per_second", &self.per_second)
            .field("per_minute", &self.per_minute)
            .field("per_hour", &self.per_hour)
            .field("usable_share", &self.usable_share)
            .field("poll", &self.poll)
            .finish()
    }
}

impl PanoptoConfig {
    /// Whether a Panopto site is configured at all.
    pub fn configured(&self) -> bool {
        !self.url.is_empty()
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !self.configured() {
            return Ok(());
        }
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            bail!("panopto.url must be the Panopto base URL (http(s)://…) or empty");
        }
        let password_grant = !self.client_id.is_empty()
            && !self.client_secret.is_empty()
            && !self.username.is_empty()
            && !self.password.is_empty();
        if self.token.is_empty() && !password_grant {
            bail!(
                "calling Panopto needs panopto.client_id, client_secret, username and password \
                 (env COURSEWIRE_PANOPTO_CLIENT_ID …), or panopto.token"
            );
        }
        match self.soap_auth {
            PanoptoSoapAuth::Password if self.password.is_empty() => {
                bail!("panopto.soap_auth = \"password\" needs panopto.username and password")
            }
            PanoptoSoapAuth::AuthCode if self.application_key.is_empty() => {
                bail!("panopto.soap_auth = \"auth_code\" needs panopto.application_key")
            }
            _ => {}
        }
        self.pace().validate().map_err(anyhow::Error::msg)?;
        let p = &self.poll;
        if p.interval_seconds == 0 || p.lease_seconds == 0 {
            bail!("panopto.poll.interval_seconds and lease_seconds must be positive");
        }
        Ok(())
    }

    /// The pacer's windows and shares.
    pub fn pace(&self) -> panopto::client::PaceConfig {
        use panopto::client::{PaceConfig, Window};
        PaceConfig {
            windows: vec![
                Window {
                    span_ms: 1_000,
                    limit: self.per_second,
                },
                Window {
                    span_ms: 60_000,
                    limit: self.per_minute,
                },
                Window {
                    span_ms: 3_600_000,
                    limit: self.per_hour,
                },
            ],
            usable: self.usable_share,
            ..PaceConfig::default()
        }
    }
}

/// `[university]`: facts about the university that several parts read (the reconciler's
/// silence trigger now; the lecture monitors next).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniversityConfig {
    /// `HH:MM-HH:MM`, local to `time_zone`.
    pub teaching_hours: String,
    /// Three-letter day names (`mon` … `sun`).
    pub teaching_days: Vec<String>,
    /// The IANA time zone (`America/New_York`): local times follow its daylight saving rules.
    pub time_zone: String,
    /// Deprecated: a fixed `+HH:00` / `-HH:00` offset, read as the `Etc/GMT` zone of that
    /// offset (no daylight saving time). `time_zone` is what to set.
    #[serde(default)]
    pub utc_offset: Option<String>,
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
    /// The shortest delay a retry schedule may hold (no zero-delay retry storms).
    pub min_retry_delay_ms: u64,
    /// Internal networks (CIDRs) subscriptions may target; public addresses always may.
    pub allowed_networks: Vec<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
}

// The URL fields of these are shown redacted (credentials may sit in them); the rest as
// derived `Debug` would.
impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &RedactedUrl(&self.url))
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .finish()
    }
}

impl fmt::Debug for CanvasConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CanvasConfig")
            .field("jwks_url", &RedactedUrl(&self.jwks_url))
            .field("jwks_min_refresh_seconds", &self.jwks_min_refresh_seconds)
            .field("jwks_refresh_seconds", &self.jwks_refresh_seconds)
            .field("jwks_key_grace_seconds", &self.jwks_key_grace_seconds)
            .field("allow_unsigned", &self.allow_unsigned)
            .field("leeway_seconds", &self.leeway_seconds)
            .field("max_token_age_seconds", &self.max_token_age_seconds)
            .field("account_uuids", &self.account_uuids)
            .field("api", &self.api)
            .finish()
    }
}

impl fmt::Debug for CanvasApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CanvasApiConfig")
            .field("url", &RedactedUrl(&self.url))
            .field("account_id", &self.account_id)
            .field("token", &self.token)
            .field("oauth_client_id", &self.oauth_client_id)
            .field("oauth_client_secret", &self.oauth_client_secret)
            .field("oauth_refresh_token", &self.oauth_refresh_token)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// `[reconcile]`: the background reconciler, `coursewire reconcile` and `coursewire verify`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    pub enabled: bool,
    pub period_seconds: u64,
    pub silence_minutes: u64,
    pub check_seconds: u64,
    pub outages: Vec<OutageWindow>,
    pub page_size: u32,
}

/// An operator-declared Live Events outage: when it has ended, the reconciler backfills.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutageWindow {
    pub from: chrono::DateTime<chrono::Utc>,
    pub to: chrono::DateTime<chrono::Utc>,
}

impl UniversityConfig {
    /// Teaching hours as minutes after local midnight, `[start, end)`.
    pub fn teaching_minutes(&self) -> anyhow::Result<(u32, u32)> {
        let parse = |hm: &str| -> Option<u32> {
            let (h, m) = hm.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
        };
        let (start, end) = self
            .teaching_hours
            .split_once('-')
            .and_then(|(a, b)| Some((parse(a)?, parse(b)?)))
            .filter(|(a, b)| a < b)
            .with_context(|| {
                format!(
                    "university.teaching_hours = {:?} is not HH:MM-HH:MM (start before end)",
                    self.teaching_hours
                )
            })?;
        Ok((start, end))
    }

    /// The teaching days, Monday = 0.
    pub fn teaching_weekdays(&self) -> anyhow::Result<Vec<chrono::Weekday>> {
        self.teaching_days
            .iter()
            .map(|d| {
                d.trim().parse::<chrono::Weekday>().map_err(|_| {
                    anyhow::anyhow!("university.teaching_days: {d:?} is not a day name (mon … sun)")
                })
            })
            .collect()
    }

    /// The university's time zone: `time_zone`, or the zone of a deprecated `utc_offset`.
    pub fn zone(&self) -> anyhow::Result<chrono_tz::Tz> {
        if let Some(offset) = &self.utc_offset {
            return fixed_offset_zone(offset);
        }
        let name = self.time_zone.trim();
        name.parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow::anyhow!(
                "university.time_zone = {name:?} is not an IANA time zone (e.g. America/New_York)"
            )
        })
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.teaching_minutes()?;
        self.teaching_weekdays()?;
        self.zone()?;
        Ok(())
    }
}

/// `+HH:00` / `-HH:00` as the fixed zone `Etc/GMT∓H` (POSIX signs: `Etc/GMT+5` is UTC-5).
fn fixed_offset_zone(text: &str) -> anyhow::Result<chrono_tz::Tz> {
    let text = text.trim();
    let wrong = || {
        anyhow::anyhow!(
            "university.utc_offset = {text:?} is not a whole-hour +HH:00 or -HH:00; set \
             university.time_zone (an IANA zone such as America/New_York) instead"
        )
    };
    let (sign, rest) = match text.split_at_checked(1) {
        Some(("+", rest)) => (1, rest),
        Some(("-", rest)) => (-1, rest),
        _ => return Err(wrong()),
    };
    let hours = match rest.split_once(':') {
        Some((h, "00")) => h.parse::<i32>().map_err(|_| wrong())?,
        _ => return Err(wrong()),
    };
    let name = match sign * hours {
        0 => "Etc/GMT".to_owned(),
        h if h > 0 => format!("Etc/GMT-{h}"),
        h => format!("Etc/GMT+{}", -h),
    };
    name.parse::<chrono_tz::Tz>().map_err(|_| wrong())
}

impl ReconcileConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if self.period_seconds == 0 || self.check_seconds == 0 || self.silence_minutes == 0 {
            bail!("reconcile.period_seconds, check_seconds and silence_minutes must be positive");
        }
        if !(1..=100).contains(&self.page_size) {
            bail!("reconcile.page_size must be 1…100");
        }
        if let Some(w) = self.outages.iter().find(|w| w.from >= w.to) {
            bail!(
                "reconcile.outages: the window {} … {} ends before it starts",
                w.from,
                w.to
            );
        }
        Ok(())
    }
}

impl CanvasApiConfig {
    /// What every call to Canvas needs: a base URL and either a token or the three OAuth
    /// refresh settings.
    pub fn require(&self) -> anyhow::Result<()> {
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            bail!(
                "canvas.api.url must be the Canvas base URL (http(s)://…) to call Canvas \
                 (env COURSEWIRE_CANVAS_API_URL)"
            );
        }
        let oauth = !self.oauth_client_id.is_empty()
            && !self.oauth_client_secret.is_empty()
            && !self.oauth_refresh_token.is_empty();
        if self.token.is_empty() && !oauth {
            bail!(
                "calling Canvas needs canvas.api.token, or canvas.api.oauth_client_id, \
                 oauth_client_secret and oauth_refresh_token (env COURSEWIRE_CANVAS_API_TOKEN …)"
            );
        }
        if self.concurrency == 0 {
            bail!("canvas.api.concurrency must be positive");
        }
        Ok(())
    }
}

/// Environment variables that were renamed with the keys they set, as (old, new).
const DEPRECATED_ENV: &[(&str, &str)] = &[
    (
        "COURSEWIRE_RECONCILE_CANVAS_URL",
        "COURSEWIRE_CANVAS_API_URL",
    ),
    (
        "COURSEWIRE_RECONCILE_ACCOUNT_ID",
        "COURSEWIRE_CANVAS_API_ACCOUNT_ID",
    ),
    (
        "COURSEWIRE_RECONCILE_CANVAS_TOKEN",
        "COURSEWIRE_CANVAS_API_TOKEN",
    ),
    (
        "COURSEWIRE_RECONCILE_OAUTH_CLIENT_ID",
        "COURSEWIRE_CANVAS_API_OAUTH_CLIENT_ID",
    ),
    (
        "COURSEWIRE_RECONCILE_OAUTH_CLIENT_SECRET",
        "COURSEWIRE_CANVAS_API_OAUTH_CLIENT_SECRET",
    ),
    (
        "COURSEWIRE_RECONCILE_OAUTH_REFRESH_TOKEN",
        "COURSEWIRE_CANVAS_API_OAUTH_REFRESH_TOKEN",
    ),
];

/// Keys that moved, as (old table, old key, new table path, new key): a file that still
/// uses the old place is read, with a deprecation warning.
const MOVED_KEYS: &[(&str, &str, &[&str], &str)] = &[
    ("reconcile", "canvas_url", &["canvas", "api"], "url"),
    ("reconcile", "account_id", &["canvas", "api"], "account_id"),
    ("reconcile", "canvas_token", &["canvas", "api"], "token"),
    (
        "reconcile",
        "oauth_client_id",
        &["canvas", "api"],
        "oauth_client_id",
    ),
    (
        "reconcile",
        "oauth_client_secret",
        &["canvas", "api"],
        "oauth_client_secret",
    ),
    (
        "reconcile",
        "oauth_refresh_token",
        &["canvas", "api"],
        "oauth_refresh_token",
    ),
    (
        "reconcile",
        "concurrency",
        &["canvas", "api"],
        "concurrency",
    ),
    (
        "reconcile",
        "teaching_hours",
        &["university"],
        "teaching_hours",
    ),
    (
        "reconcile",
        "teaching_days",
        &["university"],
        "teaching_days",
    ),
    ("reconcile", "utc_offset", &["university"], "utc_offset"),
];

/// Moves deprecated keys of a config file to their new place (the new place wins when both
/// are given) and says so in `deprecations`.
fn move_deprecated_keys(file: &mut toml::Table, deprecations: &mut Vec<String>) {
    for (old_table, old_key, new_path, new_key) in MOVED_KEYS {
        let Some(value) = file
            .get_mut(*old_table)
            .and_then(toml::Value::as_table_mut)
            .and_then(|table| table.remove(*old_key))
        else {
            continue;
        };
        let new_name = format!("{}.{new_key}", new_path.join("."));
        deprecations.push(format!(
            "{old_table}.{old_key} is deprecated: use {new_name} (read as such)"
        ));
        let mut table = &mut *file;
        for part in *new_path {
            let entry = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(inner) = entry.as_table_mut() else {
                return;
            };
            table = inner;
        }
        table.entry(new_key.to_string()).or_insert(value);
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub token: Secret,
    pub max_wait_seconds: u64,
    /// Long polls waiting at once; more are answered 503 with `Retry-After`.
    pub max_long_polls: usize,
    /// Subscriptions one token may create.
    pub max_subscriptions_per_token: u64,
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
        crate::secrets::redact_url(&self.0)
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
        let mut deprecations = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let mut overlay: toml::Table = toml::from_str(&text)
                .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
            move_deprecated_keys(&mut overlay, &mut deprecations);
            merge(&mut merged, overlay);
        }
        let mut config: Config = merged
            .try_into()
            .context("invalid configuration (check key names and value types)")?;
        config.deprecations = deprecations;
        if let Some(offset) = &config.university.utc_offset {
            config.deprecations.push(format!(
                "university.utc_offset = {offset:?} is deprecated: set university.time_zone (an \
                 IANA zone with its daylight saving rules); read as a fixed offset"
            ));
        }
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &[(String, String)]) -> anyhow::Result<()> {
        // Deprecated names first, so the new name wins when both are set.
        let mut env: Vec<(String, String)> = env.to_vec();
        for (old, new) in DEPRECATED_ENV {
            if let Some(i) = env.iter().position(|(key, _)| key == old) {
                self.deprecations
                    .push(format!("{old} is deprecated: use {new} (read as such)"));
                let value = env[i].1.clone();
                env.insert(0, (new.to_string(), value));
            }
        }
        for (key, value) in &env {
            match key.as_str() {
                "COURSEWIRE_DATABASE_URL" => self.database.url = DatabaseUrl::new(value.clone()),
                "COURSEWIRE_LISTEN" => {
                    self.server.listen = value
                        .parse()
                        .with_context(|| format!("COURSEWIRE_LISTEN={value:?} is not ADDR:PORT"))?
                }
                "COURSEWIRE_METRICS_LISTEN" => self.server.metrics_listen = value.clone(),
                "COURSEWIRE_SERVER_MAX_CONNECTIONS" => {
                    self.server.max_connections = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a connection count"))?
                }
                "COURSEWIRE_SERVER_HEADER_READ_TIMEOUT_SECONDS" => {
                    self.server.header_read_timeout_seconds = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a number of seconds"))?
                }
                "COURSEWIRE_CANVAS_JWKS_URL" => self.canvas.jwks_url = value.clone(),
                "COURSEWIRE_CANVAS_ALLOW_UNSIGNED" => {
                    self.canvas.allow_unsigned = parse_bool(key, value)?
                }
                "COURSEWIRE_CANVAS_ACCOUNT_UUIDS" => self.canvas.account_uuids = comma_list(value),
                "COURSEWIRE_CANVAS_MAX_TOKEN_AGE_SECONDS" => {
                    self.canvas.max_token_age_seconds = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a number of seconds"))?
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
                "COURSEWIRE_DELIVERY_MIN_RETRY_DELAY_MS" => {
                    self.delivery.min_retry_delay_ms = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a number of ms"))?
                }
                "COURSEWIRE_DELIVERY_ALLOWED_NETWORKS" => {
                    self.delivery.allowed_networks = comma_list(value)
                }
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
                "COURSEWIRE_SECRETS_KEY" => self.secrets.key = Secret::new(value.clone()),
                "COURSEWIRE_API_TOKEN" => self.api.token = Secret::new(value.clone()),
                "COURSEWIRE_LOG" => self.log.filter = value.clone(),
                "COURSEWIRE_RECONCILE_ENABLED" => self.reconcile.enabled = parse_bool(key, value)?,
                "COURSEWIRE_RECONCILE_PERIOD_SECONDS" => {
                    self.reconcile.period_seconds = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a number of seconds"))?
                }
                "COURSEWIRE_RECONCILE_SILENCE_MINUTES" => {
                    self.reconcile.silence_minutes = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a number of minutes"))?
                }
                "COURSEWIRE_CANVAS_API_URL" => self.canvas.api.url = value.clone(),
                "COURSEWIRE_CANVAS_API_ACCOUNT_ID" => {
                    self.canvas.api.account_id = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not an account id"))?
                }
                "COURSEWIRE_CANVAS_API_TOKEN" => self.canvas.api.token = Secret::new(value.clone()),
                "COURSEWIRE_CANVAS_API_OAUTH_CLIENT_ID" => {
                    self.canvas.api.oauth_client_id = value.clone()
                }
                "COURSEWIRE_CANVAS_API_OAUTH_CLIENT_SECRET" => {
                    self.canvas.api.oauth_client_secret = Secret::new(value.clone())
                }
                "COURSEWIRE_CANVAS_API_OAUTH_REFRESH_TOKEN" => {
                    self.canvas.api.oauth_refresh_token = Secret::new(value.clone())
                }
                "COURSEWIRE_CLOCK_FOLLOW" => self.clock.follow = value.clone(),
                "COURSEWIRE_PANOPTO_URL" => self.panopto.url = value.clone(),
                "COURSEWIRE_PANOPTO_CLIENT_ID" => self.panopto.client_id = value.clone(),
                "COURSEWIRE_PANOPTO_CLIENT_SECRET" => {
                    self.panopto.client_secret = Secret::new(value.clone())
                }
                "COURSEWIRE_PANOPTO_USERNAME" => self.panopto.username = value.clone(),
                "COURSEWIRE_PANOPTO_PASSWORD" => self.panopto.password = Secret::new(value.clone()),
                "COURSEWIRE_PANOPTO_TOKEN" => self.panopto.token = Secret::new(value.clone()),
                "COURSEWIRE_WORKFLOW_ENABLED" => self.workflow.enabled = parse_bool(key, value)?,
                "COURSEWIRE_PANOPTO_POLL_ENABLED" => {
                    self.panopto.poll.enabled = parse_bool(key, value)?
                }
                "COURSEWIRE_PANOPTO_POLL_LEASE_SECONDS" => {
                    self.panopto.poll.lease_seconds = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a number of seconds"))?
                }
                "COURSEWIRE_PANOPTO_POLL_INTERVAL_SECONDS" => {
                    self.panopto.poll.interval_seconds = value
                        .parse()
                        .with_context(|| format!("{key}={value:?} is not a number of seconds"))?
                }
                old if DEPRECATED_ENV.iter().any(|(name, _)| *name == old) => {}
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
        if let Some(bad) = self.canvas.account_uuids.iter().find(|uuid| {
            uuid.is_empty() || uuid.len() > 128 || !uuid.chars().all(|c| c.is_ascii_graphic())
        }) {
            bail!("canvas.account_uuids: {bad:?} is not a root account uuid");
        }
        if self.canvas.jwks_refresh_seconds == 0 {
            bail!("canvas.jwks_refresh_seconds must be positive");
        }
        if self.canvas.max_token_age_seconds < 60 {
            bail!(
                "canvas.max_token_age_seconds must be at least 60 (Canvas retries a delivery for \
                 10–20 minutes; the default is 3600)"
            );
        }
        let s = &self.server;
        if s.header_read_timeout_seconds == 0
            || s.body_timeout_seconds == 0
            || s.max_connections == 0
            || self.api.max_long_polls == 0
        {
            bail!(
                "server.header_read_timeout_seconds, body_timeout_seconds, max_connections and \
                 api.max_long_polls must be positive"
            );
        }
        if s.request_timeout_seconds <= self.api.max_wait_seconds {
            bail!(
                "server.request_timeout_seconds ({}) must be above api.max_wait_seconds ({}): a \
                 long poll would be cut off",
                s.request_timeout_seconds,
                self.api.max_wait_seconds
            );
        }
        if !s.metrics_listen.is_empty() && s.metrics_listen.parse::<SocketAddr>().is_err() {
            bail!("server.metrics_listen must be ADDR:PORT or empty");
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
        if d.min_retry_delay_ms == 0 {
            bail!("delivery.min_retry_delay_ms must be positive");
        }
        if d.retry_schedule_ms
            .iter()
            .any(|ms| *ms < d.min_retry_delay_ms)
        {
            bail!(
                "delivery.retry_schedule_ms: every delay must be at least \
                 delivery.min_retry_delay_ms ({} ms)",
                d.min_retry_delay_ms
            );
        }
        crate::bus::delivery::target::TargetPolicy::new(&d.allowed_networks)
            .map_err(anyhow::Error::msg)?;
        if !self.nats.url.is_empty()
            && (self.nats.stream.is_empty() || self.nats.subject_prefix.is_empty())
        {
            bail!("nats.stream and nats.subject_prefix must be set when nats.url is");
        }
        crate::secrets::SecretsKey::new(self.secrets.key.expose())?;
        self.reconcile.validate()?;
        self.university.validate()?;
        self.panopto.validate()?;
        if self.reconcile.enabled {
            self.canvas.api.require()?;
        }
        Ok(())
    }
}

/// `a, b,c` → `["a", "b", "c"]` (empty items dropped).
fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
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
    fn our_root_accounts_are_listed_or_serve_refuses() {
        let config = Config::load_from(None, &[]).unwrap();
        assert!(config.canvas.account_uuids.is_empty());
        let err = config.canvas.require_for_serve().unwrap_err();
        assert!(
            format!("{err}").contains("COURSEWIRE_CANVAS_ACCOUNT_UUIDS"),
            "{err}"
        );
        let unsigned =
            Config::load_from(None, &env(&[("COURSEWIRE_CANVAS_ALLOW_UNSIGNED", "true")])).unwrap();
        assert!(
            unsigned.canvas.require_for_serve().is_ok(),
            "unsigned needs no account"
        );
        let config = Config::load_from(
            None,
            &env(&[("COURSEWIRE_CANVAS_ACCOUNT_UUIDS", " ours , beta,")]),
        )
        .unwrap();
        assert_eq!(config.canvas.account_uuids, ["ours", "beta"]);
        assert!(config.canvas.require_for_serve().is_ok());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[canvas]\naccount_uuids = [\"has space\"]\n").unwrap();
        let err = Config::load_from(Some(&path), &[]).unwrap_err();
        assert!(
            format!("{err:#}").contains("canvas.account_uuids"),
            "{err:#}"
        );
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
    fn reconcile_settings_default_override_and_validate() {
        let config = Config::load_from(None, &[]).unwrap();
        let r = &config.reconcile;
        assert!(!r.enabled);
        assert_eq!(r.period_seconds, 4 * 3600);
        assert_eq!(
            config.university.teaching_minutes().unwrap(),
            (8 * 60, 18 * 60)
        );
        assert_eq!(config.university.teaching_weekdays().unwrap().len(), 5);
        assert!(config.deprecations.is_empty());
        let config = Config::load_from(
            None,
            &env(&[
                ("COURSEWIRE_RECONCILE_ENABLED", "true"),
                ("COURSEWIRE_CANVAS_API_URL", "http://127.0.0.1:9"),
                ("COURSEWIRE_CANVAS_API_TOKEN", "canvas-sekrit"),
                ("COURSEWIRE_RECONCILE_PERIOD_SECONDS", "60"),
            ]),
        )
        .unwrap();
        assert!(config.reconcile.enabled);
        assert_eq!(config.reconcile.period_seconds, 60);
        assert_eq!(config.canvas.api.url, "http://127.0.0.1:9");
        assert!(!format!("{config:?}").contains("canvas-sekrit"));
        let err =
            Config::load_from(None, &env(&[("COURSEWIRE_RECONCILE_ENABLED", "true")])).unwrap_err();
        assert!(format!("{err:#}").contains("canvas.api.url"), "{err:#}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[university]\nteaching_hours = \"18:00-08:00\"\n").unwrap();
        let err = Config::load_from(Some(&path), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("teaching_hours"), "{err:#}");
    }

    /// The Canvas API keys moved from `[reconcile]` to `[canvas.api]` and the teaching hours
    /// to `[university]`: a file or environment that uses the old names still works, and says
    /// so; the new name wins when both are given.
    #[test]
    fn deprecated_canvas_and_teaching_keys_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.toml");
        std::fs::write(
            &path,
            "[reconcile]\nenabled = true\ncanvas_url = \"https://old.example.edu\"\n\
             canvas_token = \"t\"\naccount_id = 7\nteaching_hours = \"09:00-17:00\"\n",
        )
        .unwrap();
        let config = Config::load_from(Some(&path), &[]).unwrap();
        assert_eq!(config.canvas.api.url, "https://old.example.edu");
        assert_eq!(config.canvas.api.account_id, 7);
        assert_eq!(config.canvas.api.token.expose(), "t");
        assert_eq!(
            config.university.teaching_minutes().unwrap(),
            (9 * 60, 17 * 60)
        );
        assert!(
            config
                .deprecations
                .iter()
                .any(|d| d.contains("reconcile.canvas_url") && d.contains("canvas.api.url")),
            "{:?}",
            config.deprecations
        );
        assert_eq!(config.deprecations.len(), 4);

        let config = Config::load_from(
            Some(&path),
            &env(&[
                (
                    "COURSEWIRE_RECONCILE_CANVAS_URL",
                    "https://env-old.example.edu",
                ),
                ("COURSEWIRE_CANVAS_API_TOKEN", "new"),
                ("COURSEWIRE_RECONCILE_CANVAS_TOKEN", "old"),
            ]),
        )
        .unwrap();
        assert_eq!(config.canvas.api.url, "https://env-old.example.edu");
        assert_eq!(config.canvas.api.token.expose(), "new", "the new name wins");
        assert!(
            config
                .deprecations
                .iter()
                .any(|d| d.contains("COURSEWIRE_RECONCILE_CANVAS_URL"))
        );
    }

    #[test]
    fn the_university_zone_is_named_or_a_deprecated_fixed_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[university]\ntime_zone = \"America/New_York\"\n").unwrap();
        let config = Config::load_from(Some(&path), &[]).unwrap();
        assert_eq!(
            config.university.zone().unwrap(),
            chrono_tz::America::New_York
        );
        std::fs::write(&path, "[university]\nutc_offset = \"-05:00\"\n").unwrap();
        let config = Config::load_from(Some(&path), &[]).unwrap();
        assert_eq!(config.university.zone().unwrap(), chrono_tz::Etc::GMTPlus5);
        assert!(
            config
                .deprecations
                .iter()
                .any(|d| d.contains("university.utc_offset")),
            "{:?}",
            config.deprecations
        );
        for (text, says) in [
            ("time_zone = \"Mars/Olympus\"", "not an IANA time zone"),
            ("utc_offset = \"+05:30\"", "whole-hour"),
        ] {
            std::fs::write(&path, format!("[university]\n{text}\n")).unwrap();
            let err = Config::load_from(Some(&path), &[]).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{err:#}");
        }
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
