//! The row and column counts a run uses: a scenario at a scale, and the
//! same scenario made wider for `sweep --columns`.

use anyhow::Result;

use super::{ColumnGroup, ColumnKind, Scenario, Sizes, Workload};
use crate::error::bad_input;

impl Scenario {
    /// The workload this scenario describes.
    pub fn workload(&self) -> Workload {
        if self.similarity.is_some() {
            Workload::Similarity
        } else {
            Workload::RankingPrep
        }
    }

    /// Production sizes (scale 1).
    pub fn production_sizes(&self) -> Sizes {
        self.sizes(1.0)
    }

    /// Sizes at `scale`: samples always scale, pools only when `scaling.scale_pools`.
    pub fn sizes(&self, scale: f64) -> Sizes {
        let scaled = |n: i64| ((n as f64 * scale).round() as u64).max(1);
        let ranking = self.similarity.is_none();
        let pools = |n: i64| {
            if self.scaling.scale_pools {
                scaled(n)
            } else {
                n as u64
            }
        };
        let groups = &self.dataset_profile.columns;
        if !ranking {
            let sim = self.similarity.as_ref();
            return Sizes {
                sample_rows: 0,
                datasets: 0,
                users: 0,
                profile_columns: 0,
                profile_numeric_columns: 0,
                user_columns: 0,
                items: sim.map_or(0, |s| scaled(s.items)),
                dimension: sim.map_or(0, |s| s.dimension as u64),
            };
        }
        Sizes {
            sample_rows: scaled(self.ranking_samples.rows),
            datasets: pools(self.dataset_profile.rows),
            users: pools(self.user_features.rows),
            profile_columns: groups.iter().map(|g| g.count as u64).sum(),
            profile_numeric_columns: groups
                .iter()
                .filter(|g| g.kind.is_numeric())
                .map(|g| g.count as u64)
                .sum(),
            user_columns: self.user_features.columns as u64,
            items: 0,
            dimension: 0,
        }
    }
}

impl Scenario {
    /// The same scenario with `count` numeric profile columns: the numeric
    /// groups scaled in proportion (the last one takes the rounding), the
    /// other columns as they are. The write-up's second growth risk is "a
    /// hundred more features"; `sweep --columns` measures it by generating
    /// data this wide. A scenario without numeric groups gets one float group.
    pub fn with_numeric_profile_columns(&self, count: u64) -> Result<Scenario> {
        if count == 0 || count > 10_000 {
            return Err(bad_input(format!(
                "--columns {count}: expected a number of numeric profile columns in [1, 10000]"
            )));
        }
        let mut out = self.clone();
        let total: u64 = self.sizes(1.0).profile_numeric_columns;
        let groups = &mut out.dataset_profile.columns;
        if total == 0 {
            groups.push(ColumnGroup {
                kind: ColumnKind::Float,
                count: count as i64,
                length: None,
                distinct: None,
            });
            return Ok(out);
        }
        let numeric: Vec<usize> = (0..groups.len())
            .filter(|&i| groups[i].kind.is_numeric())
            .collect();
        let mut left = count;
        for (k, &i) in numeric.iter().enumerate() {
            let share = if k + 1 == numeric.len() {
                left
            } else {
                (groups[i].count as u64 * count / total).min(left)
            };
            groups[i].count = share as i64;
            left -= share;
        }
        groups.retain(|g| g.count > 0);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_columns_scale_in_proportion() {
        let s = Scenario::parse(include_str!("../../scenarios/production.toml"), "p.toml").unwrap();
        for n in [1u64, 20, 87, 150, 410] {
            let wide = s.with_numeric_profile_columns(n).unwrap();
            let sizes = wide.sizes(1.0);
            assert_eq!(sizes.profile_numeric_columns, n);
            assert_eq!(sizes.profile_columns, n + 213, "{n}");
            assert!(wide.validate("w").is_ok());
        }
        assert_eq!(s.with_numeric_profile_columns(87).unwrap(), s);
        assert!(s.with_numeric_profile_columns(0).is_err());
    }
}
