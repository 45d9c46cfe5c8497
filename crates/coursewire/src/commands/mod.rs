//! One module per `coursewire` subcommand: each takes what `main.rs` parsed and loaded (the
//! arguments, the config) and does the command, printing what it prints and choosing its exit
//! code. The behaviour itself lives in the library modules they call.

pub mod config;
pub mod decode;
pub mod demo;
pub mod import;
pub mod migrate;
pub mod reconcile;
pub mod recordings;
pub mod replay;
pub mod rules;
pub mod serve;
pub mod subscriptions;
pub mod tokens;

/// Prints a line to standard output. When the reader went away (`coursewire verify | head`)
/// the output is cut short and the process stops with the status a shell gives a SIGPIPE
/// death, instead of panicking as `println!` would.
pub fn print(text: &str) {
    use std::io::Write as _;
    if let Err(err) = writeln!(std::io::stdout().lock(), "{text}") {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("coursewire: cannot write to stdout: {err}");
        std::process::exit(1);
    }
}
