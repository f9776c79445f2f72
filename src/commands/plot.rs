//! `oomlab plot`: re-draw the pictures of a saved report (or of a
//! `fidelity.json`) without re-running it.

use anyhow::Result;

use crate::cli::PlotArgs;
use oomlab::error::Exit;
use oomlab::plot::{self, PlotOptions};
use oomlab::report::Report;

/// `oomlab plot <report.json>`: draws every picture of the report into `--out`
/// (default: the report's own directory) and prints the files written.
pub fn plot(args: PlotArgs) -> Result<Exit> {
    let budget_bytes = args.budget;
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => args
            .report
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| ".".into()),
    };
    // A fidelity result (`oomlab fidelity`) has its own picture.
    if args
        .report
        .file_name()
        .is_some_and(|n| n == "fidelity.json")
    {
        let f = oomlab::fidelity::Fidelity::read(&args.report)?;
        for file in plot::render(&plot::fits::FitChart::fidelity(&f), &dir)? {
            println!("{}", file.display());
        }
        return Ok(Exit::Ok);
    }
    // A sweep's model (`model.json`, or a copy such as reports/model.json)
    // re-draws its sweep picture.
    if args
        .report
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("model") && n.ends_with(".json"))
    {
        let model = oomlab::model::Model::read(&args.report)?;
        for file in plot::render(&plot::sweep::SweepChart::new(&model), &dir)? {
            println!("{}", file.display());
        }
        return Ok(Exit::Ok);
    }
    let report = Report::read_json(&args.report)?;
    let opts = PlotOptions {
        budget_bytes,
        ..PlotOptions::for_report(&report)
    };
    let files = plot::draw_report(&report, &dir, &opts)?;
    if files.is_empty() {
        println!("nothing to draw: the report has no runs with a timeline or stages");
    }
    for f in files {
        println!("{}", f.display());
    }
    Ok(Exit::Ok)
}
