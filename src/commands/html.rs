//! `oomlab html FILE`: (re)make the self-contained page of a saved report,
//! model, postmortem or gate result.

use anyhow::Result;

use crate::cli::HtmlArgs;
use oomlab::error::Exit;
use oomlab::html::{default_out, page_of, read_document, PageOptions};

/// `oomlab html`: writes the page (default: FILE with `.html`) and prints
/// its path; exit 2 when FILE is not a document oomlab wrote.
pub fn html(args: HtmlArgs) -> Result<Exit> {
    let doc = read_document(&args.file)?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.file));
    let opts = PageOptions {
        budget_bytes: args.budget,
    };
    page_of(&doc, &args.file.display().to_string(), &opts).write(&out)?;
    println!("{}", out.display());
    Ok(Exit::Ok)
}
