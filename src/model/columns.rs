//! The model's feature-column axis: which column count its predictions are
//! at, which counts were measured, and the same model re-centred at another
//! count (the write-up's second growth risk is a column count).

use serde::{Deserialize, Serialize};

use super::Model;

/// The model's feature-column axis: the write-up's second growth risk ("the
/// features grow by a hundred columns", its Q3) is a column count, and a
/// model measured at one count cannot answer it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnAxis {
    /// The column count predictions are at (the fits are centred on it); 0
    /// in older models: the scenario's numeric profile columns.
    #[serde(default)]
    pub at: u64,
    /// The column counts the sweep measured, ascending (empty in older
    /// models: only the scenario's).
    #[serde(default)]
    pub measured: Vec<u64>,
}

/// What the model's column count counts, in the words the answers use.
pub const COLUMNS_WHAT: &str = "numeric profile columns";

impl Model {
    /// The feature-column count predictions are at: where the fits are
    /// centred (the scenario's numeric profile columns unless re-centred).
    pub fn columns_now(&self) -> u64 {
        if self.columns.at > 0 {
            self.columns.at
        } else {
            self.scenario.production.profile_numeric_columns
        }
    }

    /// The column counts the model was measured at, ascending.
    pub fn columns_measured(&self) -> Vec<u64> {
        if self.columns.measured.is_empty() {
            vec![self.scenario.production.profile_numeric_columns]
        } else {
            self.columns.measured.clone()
        }
    }

    /// True when some stage has a fitted column term: the model can say what
    /// another column count costs. Without one, its figures hold at the one
    /// count it was measured at.
    pub fn has_column_term(&self) -> bool {
        self.variants
            .iter()
            .any(|v| v.stages.iter().any(|s| s.fit.columns_identified))
    }

    /// The same model predicting at `columns` feature columns: every fit
    /// re-centred there, so `recommend`, `check` and `postmortem` answer at a
    /// logged or planned column count through their usual code. A model
    /// without a column term is returned unchanged (its figures are at the
    /// count it was measured at; callers say so).
    pub fn at_columns(&self, columns: u64) -> Model {
        let mut m = self.clone();
        if !self.has_column_term() || columns == 0 {
            return m;
        }
        for v in &mut m.variants {
            *v = v.at_columns(columns);
        }
        m.columns.at = columns;
        m
    }

    /// How far `columns` lies outside the measured column counts, in words
    /// (`None` when inside): a prediction there is an extrapolation.
    pub fn columns_outside(&self, columns: u64) -> Option<String> {
        let measured = self.columns_measured();
        let (lo, hi) = (*measured.first()?, *measured.last()?);
        if columns > hi {
            Some(format!(
                "{columns} is {} above the largest column count measured ({hi}, {:.0}% more)",
                columns - hi,
                (columns as f64 / hi.max(1) as f64 - 1.0) * 100.0
            ))
        } else if columns < lo {
            Some(format!(
                "{columns} is {} below the smallest column count measured ({lo})",
                lo - columns
            ))
        } else {
            None
        }
    }
}
