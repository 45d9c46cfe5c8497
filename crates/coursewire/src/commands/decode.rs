//! `coursewire decode FILE...`: prints each Live Event as normalized CloudEvents JSON, one
//! object per line — the same decoding ingest uses, for an engineer holding a captured payload.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use canvas::live_events;
use canvas::signature::{JwksSource, Verifier};

/// `coursewire decode`: standard output and error; exit code 1 if any file was bad.
pub async fn command(files: &[PathBuf], jwks: Option<&Path>) -> std::process::ExitCode {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    match run(files, jwks, &mut out, &mut err).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}

/// Decodes every file (`-` is standard input) and writes one CloudEvent per line to `out`.
/// Bad files are reported on `err`, one line each, and make the result an error at the end.
pub async fn run(
    files: &[PathBuf],
    jwks: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    let verifier = match jwks {
        Some(path) => Some(load_verifier(path)?),
        None => None,
    };
    let mut failed = 0;
    for file in files {
        let name = file.display().to_string();
        match decode_file(file, verifier.as_ref(), err).await {
            Ok(events) => {
                for event in events {
                    writeln!(out, "{}", serde_json::to_string(&event.cloud)?)?;
                }
            }
            Err(problem) => {
                failed += 1;
                writeln!(err, "coursewire decode: {name}: {problem:#}")?;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} input(s) could not be decoded", files.len());
    }
    Ok(())
}

fn load_verifier(path: &Path) -> anyhow::Result<Verifier> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read JWKS file {}", path.display()))?;
    let set = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JWKS document", path.display()))?;
    // A captured delivery is usually past its `exp`; the signature is what matters here.
    Ok(Verifier::new(JwksSource::Fixed(set), Duration::from_secs(0), 0).ignoring_expiry())
}

async fn decode_file(
    file: &Path,
    verifier: Option<&Verifier>,
    err: &mut dyn Write,
) -> anyhow::Result<Vec<live_events::DecodedEvent>> {
    let bytes = read_input(file)?;
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        bail!("empty input");
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return live_events::decode_bytes(trimmed.as_bytes()).map_err(|e| anyhow!("{e}"));
    }
    let claims = match verifier {
        Some(verifier) => {
            let verified = verifier
                .verify(trimmed)
                .await
                .map_err(|e| anyhow!("signature check failed: {e}"))?;
            verified.claims
        }
        None => {
            let claims = unverified_claims(trimmed)?;
            writeln!(
                err,
                "coursewire decode: {}: JWS signature NOT verified (pass --jwks FILE)",
                file.display()
            )?;
            claims
        }
    };
    let envelope = live_events::unwrap_envelope(claims).map_err(|e| anyhow!("{e}"))?;
    live_events::decode_value(&envelope).map_err(|e| anyhow!("{e}"))
}

fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        Ok(bytes)
    } else {
        std::fs::read(file).context("cannot read file")
    }
}

fn unverified_claims(token: &str) -> anyhow::Result<serde_json::Value> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!("neither JSON nor a compact JWS (expected three dot-separated parts)");
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .context("JWS payload is not base64url")?;
    serde_json::from_slice(&bytes).context("JWS payload is not JSON")
}
