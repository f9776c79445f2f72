//! The memory curve a Prometheus server kept, instead of `docker stats`.
//!
//! Clusters rarely run `docker stats` in a loop, but cAdvisor's
//! `container_memory_working_set_bytes` (what the kubelet's OOM decisions
//! use) is usually scraped. A range query's JSON
//! (`/api/v1/query_range?query=container_memory_working_set_bytes{...}`) is
//! the memory curve up to the kill: the postmortem draws it and reads its
//! peak as it does `docker stats` rows.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::super::scan::StatsPoint;
use super::{line_holding, line_text, read_json, Fact, SourceFindings};
use crate::error::bad_input;
use crate::units::format_bytes;

/// Reads a range (`matrix`) or instant (`vector`) query result.
pub fn read(path: &Path) -> Result<SourceFindings> {
    let (text, value) = read_json(path, "Prometheus query result")?;
    let bad = |why: String| bad_input(format!("{}: {why}", path.display()));
    let mut out = SourceFindings::new("prometheus", path);
    out.lines = text.lines().count() as u64;
    match value.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some(other) => {
            return Err(bad(format!(
                "line {}: the query failed (status {other}: {})",
                line_holding(&text, &["\"status\""]).unwrap_or(1),
                value.get("error").and_then(Value::as_str).unwrap_or("no error text")
            )))
        }
        None => {
            return Err(bad(
                "line 1: not a Prometheus query result (no \"status\"; save the JSON of /api/v1/query_range)".into(),
            ))
        }
    }
    let result = value
        .pointer("/data/result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("line 1: no data.result array in the query result".into()))?;
    // cAdvisor also reports the pod's cgroup (container="") and the pause
    // container ("POD"): kept in the curve, under those names, so the
    // postmortem can say it skipped them (`curves` never adds them to a
    // container's series).
    let series: Vec<&Value> = result.iter().collect();
    let mut index = 0u64;
    let mut peaks: Vec<(String, u64, f64)> = Vec::new();
    for s in series {
        let m = s.get("metric");
        let label = |k: &str| m.and_then(|m| m.get(k)).and_then(Value::as_str);
        let name = label("container")
            .or(label("pod"))
            .or(label("name"))
            .or(label("__name__"))
            .unwrap_or("series")
            .to_string();
        let samples: Vec<&Value> = match (s.get("values"), s.get("value")) {
            (Some(Value::Array(v)), _) => v.iter().collect(),
            (_, Some(v)) => vec![v],
            _ => Vec::new(),
        };
        for sample in samples {
            let pair = sample.as_array().filter(|a| a.len() == 2);
            let t = pair.and_then(|a| a[0].as_f64());
            let v = pair
                .and_then(|a| a[1].as_str())
                .and_then(|v| v.parse::<f64>().ok());
            let (Some(t), Some(v)) = (t, v) else {
                return Err(bad(format!(
                    "line {}: a sample of `{name}` is not [time, \"value\"]: {sample}",
                    line_holding(&text, &[&sample.to_string()]).unwrap_or(1)
                )));
            };
            if !v.is_finite() || v < 0.0 {
                continue;
            }
            let bytes = v.round() as u64;
            out.recognized += 1;
            // Each series' first sample at its highest value: the time
            // every sentence prints for that peak.
            match peaks.iter_mut().find(|(n, _, _)| *n == name) {
                Some(p) if bytes > p.1 => *p = (name.clone(), bytes, t),
                Some(_) => {}
                None => peaks.push((name.clone(), bytes, t)),
            }
            out.curve.push(StatsPoint {
                index,
                t_unix: Some(t),
                name: name.clone(),
                usage_bytes: bytes,
                limit_bytes: 0,
                mem_pct: None,
            });
            index += 1;
        }
    }
    for (name, bytes, t) in &peaks {
        // Prometheus writes values as strings: the peak's own text finds its line.
        let raw = format!("{bytes}");
        let line = line_holding(&text, &[&raw]);
        let fact = Fact {
            what: format!(
                "working set peaked at {} in `{name}` at {}",
                format_bytes(*bytes),
                super::super::format_unix(*t)
            ),
            bytes: Some(*bytes),
            at: out.at(line, &line_text(&text, line)),
        };
        out.series_peaks.push((name.clone(), fact));
    }
    // Until the postmortem chooses a series: the largest container's.
    let pod_level = |n: &str| n.is_empty() || n == "POD";
    out.peak = out
        .series_peaks
        .iter()
        .filter(|(n, _)| !pod_level(n))
        .max_by_key(|(_, f)| f.bytes)
        .or_else(|| out.series_peaks.first())
        .map(|(_, f)| f.clone());
    if !peaks.is_empty() {
        out.facts.push(Fact {
            what: format!(
                "{} samples of container_memory_working_set_bytes in {} series",
                out.curve.len(),
                peaks.len()
            ),
            bytes: None,
            at: out.at(None, ""),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_range_query_and_skips_the_pod_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.json");
        std::fs::write(
            &path,
            r#"{"status":"success","data":{"resultType":"matrix","result":[
{"metric":{"container":"","pod":"p"},"values":[[100,"999999999999"]]},
{"metric":{"container":"scheduler","pod":"p"},"values":[[100,"1000"],[115,"5000"],[130,"3000"]]}
]}}"#,
        )
        .unwrap();
        let f = read(&path).unwrap();
        assert_eq!(f.curve.len(), 4, "the pod's series kept, by name");
        let peak = f.peak.unwrap();
        assert_eq!(peak.bytes, Some(5000));
        assert_eq!(peak.at.line, Some(3));
        std::fs::write(
            &path,
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        )
        .unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("parse error"));
        std::fs::write(&path, "{\n\"status\": \"success\",\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
    }
}
