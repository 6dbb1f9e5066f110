//! One module per subcommand; each exposes `main(..) -> ExitCode`.
pub mod check;
pub mod demo;
pub mod doctor;
pub mod drain;
pub mod listener;
pub mod maglev;
pub mod plan;
pub mod reload;
pub mod run;
pub mod top;
pub mod version;
