//! `sluice check`: validate a config, printing a summary (exit 0) or every error (exit 1).
use std::path::Path;
use std::process::ExitCode;

use control::config::{check_file, summary};

pub fn main(config: &Path) -> ExitCode {
    let checked = check_file(config);
    for warning in &checked.warnings {
        eprintln!("{warning}");
    }
    match checked.result {
        Ok(c) => {
            print!("{}", summary(&c));
            let warnings = match checked.warnings.len() {
                0 => String::new(),
                1 => " (1 warning)".to_owned(),
                n => format!(" ({n} warnings)"),
            };
            println!("{}: OK{warnings}", config.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors.iter() {
                eprintln!("{e}");
            }
            let s = if errors.len() == 1 { "" } else { "s" };
            eprintln!("{} error{s} in {}", errors.len(), config.display());
            ExitCode::FAILURE
        }
    }
}
