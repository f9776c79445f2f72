//! oomlab: replays memory-hungry data preparation, measures it exactly, and
//! tells you what fits.
//!
//! The library holds everything; the `oomlab` binary (`src/main.rs`,
//! `src/cli.rs`, `src/commands/`) parses flags and calls it. Modules form
//! layers that import only downward (checked by `.ci/layers.py`; the map is
//! `docs/ARCHITECTURE.md`):
//!
//! - leaves: [`units`], [`error`], [`clock`], [`settings`], [`machine`], [`scenario`],
//!   [`interrupt`], [`alloc`], [`progress`];
//! - what a child does: [`data`], [`sampling`], [`protocol`], [`probe`],
//!   [`strategy`], [`child`];
//! - measuring it: [`sampler`], [`runner`], [`preflight`], [`journal`],
//!   [`replay`], [`record`];
//! - what was measured: [`report`];
//! - what is made of it: [`table`], [`summary`], [`plot`], [`model`], [`gate`],
//!   [`postmortem`], [`fidelity`], and [`html`], the one page that shows them;
//! - what runs many measurements and answers with them: [`sweep`],
//!   [`recommend`].

pub mod alloc;
pub mod child;
pub mod clock;
pub mod data;
pub mod emit;
pub mod error;
pub mod fidelity;
pub mod gate;
pub mod html;
pub mod interrupt;
pub mod journal;
pub mod lines;
pub mod machine;
pub mod model;
pub mod plot;
pub mod postmortem;
pub mod preflight;
pub mod probe;
pub mod progress;
pub mod protocol;
pub mod recommend;
pub mod record;
pub mod replay;
pub mod report;
pub mod runner;
pub mod sampler;
pub mod sampling;
pub mod scenario;
pub mod settings;
pub mod strategy;
pub mod summary;
pub mod sweep;
pub mod table;
pub mod units;
