//! `report.html`: one self-contained page a person opens and forwards.
//!
//! A report directory holds `report.json`, `summary.md` and pictures; the
//! people who read an OOM review or a capacity check open one page, and five
//! files do not travel well in a ticket. An SVG cannot say the RSS under the
//! cursor either. So every report (and model, postmortem, gate result) also
//! gets one HTML file that needs nothing else: the figures embedded as JSON,
//! the charts drawn in the page by uPlot (vendored under
//! `assets/html/vendor/uplot/`, MIT, pinned), the page's own script and style
//! from `assets/html/`, all compiled in with `include_str!`. The page's
//! Content-Security-Policy forbids every fetch, so it cannot reach a network
//! even by mistake.
//!
//! This layer sits above what it shows (report, model, postmortem), like
//! `plot`. One file per page kind builds the page's data ([`timeline`] for a
//! report, [`model`], [`postmortem`], [`gate`]); this file holds the frame
//! they share and the embedding, and [`read_page`] tells the kinds apart for
//! `oomlab html FILE`.

pub mod gate;
pub mod model;
pub mod postmortem;
pub mod timeline;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::error::bad_input;
use crate::machine::MachineFacts;
use crate::report::{write_atomically, Report};
use crate::units::format_bytes;

const UPLOT_JS: &str = include_str!("../../assets/html/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/html/vendor/uplot/uPlot.min.css");
const PAGE_CSS: &str = include_str!("../../assets/html/page.css");
const COMMON_JS: &str = include_str!("../../assets/html/common.js");
const TIMELINE_JS: &str = include_str!("../../assets/html/timeline.js");
const MODEL_JS: &str = include_str!("../../assets/html/model.js");
const POSTMORTEM_JS: &str = include_str!("../../assets/html/postmortem.js");
const GATE_JS: &str = include_str!("../../assets/html/gate.js");

/// The file name a report directory's page gets.
pub const REPORT_PAGE: &str = "report.html";

/// Which script draws a page: one per kind of document oomlab writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Report,
    Model,
    Postmortem,
    Gate,
}

impl Kind {
    fn script(self) -> &'static str {
        match self {
            Kind::Report => TIMELINE_JS,
            Kind::Model => MODEL_JS,
            Kind::Postmortem => POSTMORTEM_JS,
            Kind::Gate => GATE_JS,
        }
    }
}

/// One line of "what produced these figures": every page carries them, so a
/// figure forwarded without its command line still says where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Fact {
    pub label: String,
    pub value: String,
}

/// Builds a [`Fact`]; a short name keeps the page builders readable.
pub fn fact(label: &str, value: impl Into<String>) -> Fact {
    Fact {
        label: label.to_string(),
        value: value.into(),
    }
}

/// A page before it is framed: what the page script reads from the embedded JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub kind: Kind,
    pub title: String,
    /// One line under the title (the verdict, the scenario).
    pub subtitle: String,
    /// What produced the figures: command, replay mode, pandas, machine.
    pub provenance: Vec<Fact>,
    /// The kind's own figures, read by its script.
    pub body: serde_json::Value,
}

/// JSON safe inside a `<script>` element: every `<` is written `\u003c`, so
/// no string in a report (a log line, a command) can close the element or
/// open a comment, and the JSON still parses to the same value.
pub fn embed_json<T: Serialize>(value: &T) -> Result<String> {
    let json = serde_json::to_string(value).context("serializing the page's data")?;
    Ok(json.replace('<', "\\u003c"))
}

/// Escapes text for an HTML element or attribute.
fn escape_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Page {
    /// The whole HTML document, with the data, the library and the scripts inline.
    pub fn render(&self) -> Result<String> {
        let data = embed_json(self)?;
        let mut html = String::with_capacity(data.len() + UPLOT_JS.len() + 32 * 1024);
        html.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        // Nothing may be fetched: the page is whole, and a forwarded copy
        // must not call anywhere when opened.
        html.push_str(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n",
        );
        html.push_str(&format!(
            "<meta name=\"generator\" content=\"oomlab {}\">\n",
            env!("CARGO_PKG_VERSION")
        ));
        html.push_str(&format!("<title>{}</title>\n", escape_text(&self.title)));
        html.push_str("<style>\n");
        html.push_str(UPLOT_CSS);
        html.push('\n');
        html.push_str(PAGE_CSS);
        html.push_str("\n</style>\n</head>\n<body>\n");
        html.push_str(&format!(
            "<header><h1 id=\"title\">{}</h1><p id=\"subtitle\">{}</p></header>\n",
            escape_text(&self.title),
            escape_text(&self.subtitle)
        ));
        html.push_str("<main id=\"main\"><noscript>This page draws its charts with JavaScript; the figures are in the JSON embedded below.</noscript></main>\n");
        html.push_str("<footer id=\"provenance\"></footer>\n");
        html.push_str("<script type=\"application/json\" id=\"oomlab-data\">");
        html.push_str(&data);
        html.push_str("</script>\n<script>\n");
        html.push_str(UPLOT_JS);
        html.push_str("\n</script>\n<script>\n");
        html.push_str(COMMON_JS);
        html.push_str("\n</script>\n<script>\n");
        html.push_str(self.kind.script());
        html.push_str("\n</script>\n</body>\n</html>\n");
        Ok(html)
    }

    /// Writes the page atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomically(path, self.render()?.as_bytes())
    }
}

/// The machine a figure was measured on, in one line.
pub fn machine_line(m: &MachineFacts) -> String {
    let mut line = format!(
        "{}, kernel {}, {} CPUs, {} RAM",
        m.os,
        m.kernel,
        m.cpus,
        format_bytes(m.total_memory_bytes)
    );
    if let Some(limit) = m.cgroup_memory_limit_bytes {
        line += &format!(", container limit {}", format_bytes(limit));
    }
    line
}

/// Writes `report.html` into a report directory, beside `report.json`.
pub fn write_report_page(report: &Report, dir: &Path) -> Result<PathBuf> {
    let path = dir.join(REPORT_PAGE);
    timeline::page(report, &dir.join("report.json").display().to_string()).write(&path)?;
    Ok(path)
}

/// Writes `model.html` beside a sweep's `model.json` in `dir`, against the
/// default budget. A page that cannot be written must not cost the sweep its
/// model: the failure is a warning, and `oomlab html` remakes the page.
pub fn write_model_page(model: &crate::model::Model, dir: &Path) {
    let path = dir.join("model.html");
    let source = dir.join("model.json").display().to_string();
    if let Err(err) = model::page(model, &source, model::budget(None)).write(&path) {
        eprintln!("warning: {} not written: {err:#}", path.display());
    }
}

/// What `oomlab html` was given, once it is known which document it is.
pub enum Document {
    Report(Box<Report>),
    Model(Box<crate::model::Model>),
    Postmortem(Box<crate::postmortem::Postmortem>),
    Gate(Box<gate::GateDocument>),
}

/// Reads any document oomlab writes and tells which it is by its keys:
/// a report has `runs`, a model `variants`, a postmortem `facts`, a gate
/// result `regressed`. Anything else is bad input (exit 2) naming the file.
pub fn read_document(path: &Path) -> Result<Document> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| bad_input(format!("{shown}: cannot read the file: {e}")))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        bad_input(format!(
            "{shown}: not JSON ({e}); expected an oomlab report.json, model.json, postmortem.json or gate --json result"
        ))
    })?;
    let has = |key: &str| value.get(key).is_some();
    if has("runs") && has("scenario") {
        Ok(Document::Report(Box::new(Report::from_json(
            &bytes, &shown,
        )?)))
    } else if has("variants") && has("validation") {
        Ok(Document::Model(Box::new(crate::model::Model::parse(
            &bytes, path,
        )?)))
    } else if has("facts") && has("verdict") {
        let pm = serde_json::from_value(value)
            .map_err(|e| bad_input(format!("{shown}: not a valid oomlab postmortem: {e}")))?;
        Ok(Document::Postmortem(Box::new(pm)))
    } else if has("regressed") && has("strategies") {
        let g = serde_json::from_value(value)
            .map_err(|e| bad_input(format!("{shown}: not a valid oomlab gate result: {e}")))?;
        Ok(Document::Gate(Box::new(g)))
    } else {
        Err(bad_input(format!(
            "{shown}: not an oomlab document: expected a report.json (with `runs`), a model.json (`variants`), a postmortem.json (`facts`) or a gate --json result (`regressed`)"
        )))
    }
}

/// How a page of a saved document is made: the budget a model's headroom
/// grid is judged against.
#[derive(Debug, Clone, Default)]
pub struct PageOptions {
    /// A memory budget for a model's page (default: the write-up's 150 GB).
    pub budget_bytes: Option<u64>,
}

/// The page of a saved document; `source` names the file it was made from.
pub fn page_of(doc: &Document, source: &str, opts: &PageOptions) -> Page {
    match doc {
        Document::Report(r) => timeline::page(r, source),
        Document::Model(m) => model::page(m, source, model::budget(opts.budget_bytes)),
        Document::Postmortem(pm) => postmortem::page(pm, source),
        Document::Gate(g) => gate::page(g, source),
    }
}

/// Where `oomlab html FILE` writes by default: `report.json` becomes
/// `report.html`, `model.json` `model.html`, beside it.
pub fn default_out(path: &Path) -> PathBuf {
    path.with_extension("html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_the_script_and_parses_back() {
        let hostile = serde_json::json!({"line": "</script><script>alert(1)</script><!--"});
        let text = embed_json(&hostile).unwrap();
        assert!(!text.to_lowercase().contains("</script"));
        assert!(!text.contains("<!--"));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, hostile);
    }

    #[test]
    fn inlined_scripts_and_styles_cannot_close_their_elements() {
        for (name, text) in [
            ("uPlot", UPLOT_JS),
            ("common.js", COMMON_JS),
            ("timeline.js", TIMELINE_JS),
            ("model.js", MODEL_JS),
            ("postmortem.js", POSTMORTEM_JS),
            ("gate.js", GATE_JS),
            ("uPlot css", UPLOT_CSS),
            ("page.css", PAGE_CSS),
        ] {
            let lower = text.to_lowercase();
            assert!(
                !lower.contains("</script") && !lower.contains("</style"),
                "{name} would end its element early"
            );
            // No page fetches anything: no URL the browser would load.
            assert!(!lower.contains("fetch("), "{name} fetches");
            assert!(!lower.contains("xmlhttprequest"), "{name} fetches");
        }
    }
}
