//! `sluice check`: validate a config, printing a summary and the memory it needs (exit 0), or
//! every error (exit 1). A memory warning (EAL gets less than the pools need) is printed but
//! does not fail the check: the estimate is an estimate, and `sluice run` says the same on start.
use std::path::Path;
use std::process::ExitCode;

use control::config::{check_file, summary};

use crate::sizing::memory_block;

pub fn main(config: &Path) -> ExitCode {
    let checked = check_file(config);
    for warning in &checked.warnings {
        eprintln!("{warning}");
    }
    match checked.result {
        Ok(c) => {
            print!("{}", summary(&c, Some(config)));
            let (memory, memory_warnings) = memory_block(&c);
            print!("{memory}");
            let warnings = match checked.warnings.len() + memory_warnings.len() {
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
