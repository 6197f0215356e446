//! `legate`: an Envoy-compatible L7 proxy. Takes Envoy's command line and v3 bootstrap.

mod cli;
mod demo;
mod server;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, Mode, VERSION_LINE};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        println!("\nlegate  version: {VERSION_LINE}\n");
        return ExitCode::SUCCESS;
    }
    init_logging(cli.log_level.directive());
    if cli.command == Some(Command::Demo) {
        return run_demo(&cli);
    }
    let description = cli.config_path.as_ref().map_or_else(|| "<inline>".to_string(), |p| p.display().to_string());
    let loaded = match legate_config::load(cli.config_path.as_deref(), cli.config_yaml.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error initializing configuration '{description}': {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.mode == Mode::Validate {
        println!("configuration '{description}' OK");
        return ExitCode::SUCCESS;
    }
    match server::run(&cli, loaded) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `legate demo`: services in-process, the proxy on the embedded front-proxy config.
fn run_demo(cli: &Cli) -> ExitCode {
    let cert_dir = demo::cert_dir();
    let config = match demo::demo_config(&cert_dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot write the demo certificate: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let loaded = match legate_config::parse_str(&config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("embedded demo config is invalid: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = demo::start_services() {
        eprintln!("error: cannot start the demo services: {e:#}");
        return ExitCode::FAILURE;
    }
    println!("{}", demo::banner(&cert_dir));
    match server::run(cli, loaded) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the log subscriber; `server` changes the level at run time through /logging.
fn init_logging(level: &'static str) {
    server::logging::install(level);
}
