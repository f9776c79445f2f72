//! `oomlab scenarios`: what is built in, so an installed oomlab can be used
//! (and its scenarios copied and edited) without a checkout.

use anyhow::Result;

use crate::cli::ScenariosArgs;
use oomlab::error::{bad_input, Exit};
use oomlab::scenario::{Scenario, BUNDLED};

/// `oomlab scenarios [show NAME]`.
pub fn scenarios(args: ScenariosArgs) -> Result<Exit> {
    match (args.action.as_deref(), args.name.as_deref()) {
        (None, None) => {
            for (name, text) in BUNDLED {
                let scenario = Scenario::parse(text, name)?;
                println!("{name:<14} {}", scenario.description);
            }
            println!("\n`--scenario NAME` runs one from any directory; `oomlab scenarios show NAME > my.toml` copies one to edit.");
            Ok(Exit::Ok)
        }
        (Some("show"), Some(name)) => match BUNDLED.iter().find(|(n, _)| *n == name) {
            Some((_, text)) => {
                print!("{text}");
                Ok(Exit::Ok)
            }
            None => Err(bad_input(format!(
                "scenarios show {name}: no bundled scenario of that name (expected one of: {})",
                BUNDLED.map(|(n, _)| n).join(", ")
            ))),
        },
        _ => Err(bad_input(
            "usage: oomlab scenarios (list them) | oomlab scenarios show NAME",
        )),
    }
}
