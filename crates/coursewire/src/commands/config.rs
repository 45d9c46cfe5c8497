//! `coursewire config print-default|show`: the documented default file, or the configuration
//! in effect (defaults, file, environment), secrets redacted.

use std::path::Path;
use std::process::ExitCode;

use super::print;
use crate::cli::ConfigAction;
use crate::config::{Config, DEFAULT_FILE};

pub fn run(action: ConfigAction, file: Option<&Path>) -> anyhow::Result<ExitCode> {
    match action {
        ConfigAction::PrintDefault => print(DEFAULT_FILE.trim_end_matches('\n')),
        ConfigAction::Show => print(&format!("{:#?}", Config::load(file)?)),
    }
    Ok(ExitCode::SUCCESS)
}
