//! `oomlab scenarios`: what is built in, so an installed oomlab can be used
//! (and its scenarios copied and edited, its pandas reference run) without a
//! checkout.

use std::path::Path;

use anyhow::Result;

use crate::cli::ScenariosArgs;
use oomlab::error::{bad_input, Exit};
use oomlab::model::BUNDLED_MODELS;
use oomlab::scenario::{write_bundled, Scenario, BUNDLED, REFERENCE};

/// `oomlab scenarios [show NAME | write DIR]`.
pub fn scenarios(args: ScenariosArgs) -> Result<Exit> {
    match (args.action.as_deref(), args.name.as_deref()) {
        (None, None) => {
            println!("Scenarios (`--scenario NAME`):");
            for (name, text) in BUNDLED {
                let scenario = Scenario::parse(text, name)?;
                println!("  {name:<26} {}", scenario.description);
            }
            println!("\nModels (`recommend`/`check --model NAME`; `production` when none is given or found):");
            for (name, _, what) in BUNDLED_MODELS {
                println!("  {name:<26} {what}");
            }
            println!("\nThe pandas reference (scenarios/pandas/ in the repository):");
            for (path, _) in REFERENCE {
                println!("  {path}");
            }
            println!("\n`oomlab scenarios show NAME > my.toml` copies one to edit; `oomlab scenarios write DIR` writes every scenario and the pandas reference into DIR (then `python3 DIR/pandas/ranking_prep.py --help`).");
            Ok(Exit::Ok)
        }
        (Some("show"), Some(name)) => {
            let text = BUNDLED
                .iter()
                .chain(REFERENCE.iter())
                .find(|(n, _)| *n == name)
                .map(|(_, t)| *t);
            match text {
                Some(text) => {
                    print!("{text}");
                    Ok(Exit::Ok)
                }
                None => Err(bad_input(format!(
                    "scenarios show {name}: nothing bundled of that name (expected one of: {})",
                    BUNDLED
                        .iter()
                        .chain(REFERENCE.iter())
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        }
        (Some("write"), Some(dir)) => {
            let written = write_bundled(Path::new(dir))?;
            for path in &written {
                println!("{}", path.display());
            }
            Ok(Exit::Ok)
        }
        _ => Err(bad_input(
            "usage: oomlab scenarios (list them) | oomlab scenarios show NAME | oomlab scenarios write DIR",
        )),
    }
}
