//! oomlab: replays memory-hungry data preparation, measures it exactly, and
//! tells you what fits. See README.md for the commands and exit codes.
//!
//! The binary is flags and glue: `cli` parses, `commands` calls the library.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use oomlab::error::{exit_code_of, Exit};
use oomlab::{alloc, child, interrupt};

/// Every allocation goes through `alloc::OomlabAlloc`: the system allocator,
/// or dhat in a child that was asked to heap-profile (see `alloc.rs`).
#[global_allocator]
static GLOBAL: alloc::OomlabAlloc = alloc::OomlabAlloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if prints_only(&cli.command) {
        // `oomlab recommend ... | head -1`: end quietly when the reader goes,
        // as Unix tools do, instead of panicking on the closed pipe. Commands
        // that run a child keep Rust's default (the error is returned), so a
        // closed terminal never leaves a measured child behind.
        // SAFETY: setting a signal's disposition to the default, before any
        // thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Child { job } => child::main(&job).map(|_| Exit::Ok),
        Command::Compare(args) => commands::compare::compare(args),
        Command::Run(args) => commands::compare::run(args),
        Command::Data(args) => commands::data::data(args),
        Command::Gate(args) => commands::gate::gate(args),
        Command::Plot(args) => commands::plot::plot(args),
        Command::Html(args) => commands::html::html(args),
        Command::Sweep(args) => commands::sweep::sweep(args),
        Command::Recommend(args) => commands::recommend::recommend(args),
        Command::Check(args) => commands::check::check(args),
        Command::Record(args) => commands::record::record(args),
        Command::Postmortem(args) => commands::postmortem::postmortem(args),
        Command::Fidelity(args) => commands::fidelity::fidelity(args),
        Command::Scenarios(args) => commands::scenarios::scenarios(args),
        Command::Model(args) => commands::model::model(args),
    };
    let exit = match result {
        Ok(exit) => exit,
        Err(err) => {
            let exit = exit_code_of(&err);
            if exit == Exit::Internal {
                eprintln!("error: {err:#}");
            } else {
                eprintln!("error: {err}");
            }
            exit
        }
    };
    // However the command ended, a run interrupted while a measured child ran
    // (see interrupt.rs) says so in its exit code.
    let exit = match interrupt::received() {
        Some(signal) => Exit::for_signal(signal),
        None => exit,
    };
    ExitCode::from(exit as u8)
}

/// Commands that only read a model and print (no report, no child): safe
/// to end on a closed pipe.
fn prints_only(command: &Command) -> bool {
    matches!(command, Command::Recommend(_) | Command::Check(_))
}
