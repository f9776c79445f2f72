//! Kubernetes' record of a killed pod: `kubectl get pod -o json` or the text
//! of `kubectl describe pod`.
//!
//! When a container is OOM-killed the kubelet records it in the pod's status
//! (`lastState.terminated.reason: OOMKilled`, `exitCode: 137`) and the pod's
//! spec holds the limit it died at (`resources.limits.memory: 150Gi`): the
//! two facts a scheduler log alone rarely has.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::{each_line, line_holding, line_text, read_json, Fact, SourceFindings, Where};
use crate::error::bad_input;
use crate::units::format_bytes;

/// Parses a Kubernetes memory quantity: `150Gi`, `161061273600`, `150G`,
/// `153600Mi`, `1.5e11`, `512M`, `100000k`.
pub fn quantity(text: &str) -> Option<u64> {
    let t = text.trim();
    let units: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    let (number, factor) = units
        .iter()
        .find_map(|(u, f)| t.strip_suffix(u).map(|n| (n, *f)))
        .unwrap_or((t, 1.0));
    let value: f64 = number.parse().ok()?;
    let bytes = value * factor;
    (bytes.is_finite() && bytes >= 0.0).then(|| bytes.round() as u64)
}

/// Reads either form (JSON when the file starts with `{`).
pub fn read(path: &Path) -> Result<SourceFindings> {
    let head = std::fs::read(path)
        .map(|b| b.iter().copied().find(|c| !c.is_ascii_whitespace()))
        .unwrap_or(None);
    if head == Some(b'{') {
        read_pod_json(path)
    } else {
        read_describe(path)
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// `kubectl get pod NAME -o json` (one pod, or a `List` of them).
fn read_pod_json(path: &Path) -> Result<SourceFindings> {
    let (text, value) = read_json(path, "kubectl pod JSON")?;
    let mut out = SourceFindings::new("kubernetes pod", path);
    out.lines = text.lines().count() as u64;
    let pods: Vec<&Value> = match value.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => vec![&value],
    };
    if pods
        .iter()
        .all(|p| p.get("kind").and_then(Value::as_str) != Some("Pod"))
    {
        return Err(bad_input(format!(
            "{}: line 1: not a pod (`kubectl get pod NAME -o json` prints one with \"kind\": \"Pod\")",
            path.display()
        )));
    }
    for pod in pods {
        let pod_name = str_at(pod, &["metadata", "name"]).unwrap_or("?");
        let mut limits: Vec<(String, String)> = Vec::new();
        for c in pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = str_at(c, &["name"]).unwrap_or("?").to_string();
            if let Some(m) = str_at(c, &["resources", "limits", "memory"]) {
                limits.push((name, m.to_string()));
            }
        }
        let statuses = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut killed_container = None;
        for s in &statuses {
            let name = str_at(s, &["name"]).unwrap_or("?");
            for state in ["lastState", "state"] {
                let Some(t) = s.get(state).and_then(|v| v.get("terminated")) else {
                    continue;
                };
                let reason = t.get("reason").and_then(Value::as_str).unwrap_or("");
                let code = t.get("exitCode").and_then(Value::as_i64);
                let line = line_holding(&text, &["\"reason\"", &format!("\"{reason}\"")]);
                let what = format!(
                    "container `{name}` of pod `{pod_name}` terminated ({state}): reason {}, exit code {}{}",
                    if reason.is_empty() { "?" } else { reason },
                    code.map_or("?".into(), |c| c.to_string()),
                    str_at(t, &["finishedAt"])
                        .map(|f| format!(", finished {f}"))
                        .unwrap_or_default()
                );
                out.recognized += 1;
                let fact = Fact {
                    what,
                    bytes: None,
                    at: out.at(line, &line_text(&text, line)),
                };
                if reason == "OOMKilled" && out.kill.is_none() {
                    out.kill = Some(fact);
                    killed_container = Some(name.to_string());
                    out.container = Some(name.to_string());
                } else {
                    out.facts.push(fact);
                }
            }
            if let Some(r) = s.get("restartCount").and_then(Value::as_u64) {
                let line = line_holding(&text, &["\"restartCount\"", &r.to_string()]);
                out.facts.push(Fact {
                    what: format!("container `{name}` restarted {r} time(s)"),
                    bytes: None,
                    at: out.at(line, &line_text(&text, line)),
                });
            }
        }
        for (name, m) in &limits {
            let bytes = quantity(m).ok_or_else(|| {
                bad_input(format!(
                    "{}: line {}: resources.limits.memory `{m}` of container `{name}` is not a Kubernetes quantity (e.g. 150Gi)",
                    path.display(),
                    line_holding(&text, &[&format!("\"{m}\"")]).unwrap_or(0)
                ))
            })?;
            let line = line_holding(&text, &["\"memory\"", &format!("\"{m}\"")]);
            out.recognized += 1;
            let at = out.at(line, &line_text(&text, line));
            let fact = limit_fact(name, m, bytes, at);
            let is_killed = killed_container.as_deref() == Some(name.as_str());
            if out.limit.is_none() && (is_killed || killed_container.is_none()) {
                out.limit = Some(fact);
            } else {
                out.facts.push(fact);
            }
        }
    }
    Ok(out)
}

/// A container's memory limit as a fact, worded the same from the pod's
/// JSON and from `kubectl describe`.
fn limit_fact(container: &str, quantity: &str, bytes: u64, at: Where) -> Fact {
    Fact {
        what: format!(
            "container `{container}` memory limit {quantity} ({})",
            format_bytes(bytes)
        ),
        bytes: Some(bytes),
        at,
    }
}

/// The text of `kubectl describe pod NAME`.
fn read_describe(path: &Path) -> Result<SourceFindings> {
    let mut out = SourceFindings::new("kubernetes pod", path);
    let mut in_containers = false;
    let mut container = String::from("?");
    let mut in_limits: Option<usize> = None;
    let mut last_state = "state";
    each_line(path, "kubectl describe output", |n, line| {
        out.lines += 1;
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if indent == 0 {
            in_containers = t == "Containers:" || t == "Init Containers:";
            in_limits = None;
        }
        if in_containers && indent == 2 && t.ends_with(':') && !t.contains(' ') {
            container = t.trim_end_matches(':').to_string();
        }
        if let Some(li) = in_limits {
            if indent <= li {
                in_limits = None;
            } else if let Some(m) = t.strip_prefix("memory:") {
                let m = m.trim();
                if let Some(bytes) = quantity(m) {
                    out.recognized += 1;
                    let fact = limit_fact(&container, m, bytes, out.at(Some(n), line));
                    if out.limit.is_none() {
                        out.limit = Some(fact);
                    } else {
                        out.facts.push(fact);
                    }
                }
            }
        }
        if t == "Limits:" {
            in_limits = Some(indent);
        } else if t.starts_with("Last State:") {
            last_state = "last state";
        } else if t.starts_with("State:") {
            last_state = "state";
        } else if let Some(reason) = t.strip_prefix("Reason:") {
            let reason = reason.trim();
            out.recognized += 1;
            let fact = Fact {
                what: format!("container `{container}` terminated ({last_state}): reason {reason}"),
                bytes: None,
                at: out.at(Some(n), line),
            };
            if reason == "OOMKilled" && out.kill.is_none() {
                out.kill = Some(fact);
                out.container = Some(container.to_string());
            } else {
                out.facts.push(fact);
            }
        } else if let Some(code) = t.strip_prefix("Exit Code:") {
            out.recognized += 1;
            let code = code.trim();
            out.facts.push(Fact {
                what: format!(
                    "container `{container}` exit code {code}{}",
                    if code == "137" {
                        " (128 + 9: SIGKILL)"
                    } else {
                        ""
                    }
                ),
                bytes: None,
                at: out.at(Some(n), line),
            });
        } else if let Some(r) = t.strip_prefix("Restart Count:") {
            out.recognized += 1;
            out.facts.push(Fact {
                what: format!("container `{container}` restarted {} time(s)", r.trim()),
                bytes: None,
                at: out.at(Some(n), line),
            });
        }
    })?;
    if out.recognized == 0 {
        return Err(bad_input(format!(
            "{}: line 1: neither `kubectl get pod -o json` nor `kubectl describe pod` output (no Reason:, Exit Code: or Limits: line)",
            path.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity("150Gi"), Some(150 << 30));
        assert_eq!(quantity("150G"), Some(150_000_000_000));
        assert_eq!(quantity("1.5e11"), Some(150_000_000_000));
        assert_eq!(quantity("153600Mi"), Some(150 << 30));
        assert_eq!(quantity("161061273600"), Some(161_061_273_600));
        assert_eq!(quantity("lots"), None);
        assert_eq!(quantity("-1Gi"), None);
    }
}
