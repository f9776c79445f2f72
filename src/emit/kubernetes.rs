//! `--emit kubernetes`: Indexed Jobs (batch/v1) that run a sweep's points as
//! pods, built from the typed API objects of `k8s-openapi`, so the manifest
//! is valid by construction rather than by a string template.
//!
//! An Indexed Job gives every pod the same spec; only `JOB_COMPLETION_INDEX`
//! differs. Each pod's command is a `case` on that index choosing its run's
//! `oomlab` command line, and since a pod's memory limit is in the spec, runs
//! with different limits go in different Jobs: one Job per distinct limit
//! (all runs in one Job when `--pod-memory` gives them all the same).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, PersistentVolumeClaimVolumeSource, PodSpec,
    PodTemplateSpec, ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::List;

use super::{dns_label, shell_quote, Emitter, PodRun, Target, CACHE_MOUNT, RESULTS_MOUNT};

/// The annotation listing a Job's runs by completion index (`index`, `dir`,
/// `args`), for people and tools reading the manifest back.
pub const RUNS_ANNOTATION: &str = "oomlab.dev/runs";

/// The Kubernetes emitter.
pub struct Kubernetes;

/// A memory quantity as Kubernetes writes it (`768Mi`, `17Gi`).
pub fn quantity(bytes: u64) -> Quantity {
    if bytes.is_multiple_of(1 << 30) {
        Quantity(format!("{}Gi", bytes >> 30))
    } else if bytes.is_multiple_of(1 << 20) {
        Quantity(format!("{}Mi", bytes >> 20))
    } else {
        Quantity(bytes.to_string())
    }
}

/// The pod's shell script: the run of `$JOB_COMPLETION_INDEX`, exec'd so
/// oomlab is the container's process and its exit code the pod's.
pub fn script(runs: &[&PodRun]) -> String {
    let mut s = String::from("case \"$JOB_COMPLETION_INDEX\" in\n");
    for (i, run) in runs.iter().enumerate() {
        let argv: Vec<String> = std::iter::once("oomlab".to_string())
            .chain(run.args.iter().cloned())
            .map(|a| shell_quote(&a))
            .collect();
        s += &format!("{i}) exec {} ;;\n", argv.join(" "));
    }
    s += "*) echo \"oomlab: no run for completion index $JOB_COMPLETION_INDEX\" >&2; exit 2 ;;\nesac\n";
    s
}

/// One Indexed Job for `runs`, which share a memory limit.
fn job(target: &Target, runs: &[&PodRun], limit: u64) -> Result<Job> {
    let q = quantity(limit);
    let name = dns_label(&format!("oomlab-{}-{}", target.name, q.0));
    let listed: Vec<serde_json::Value> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| serde_json::json!({"index": i, "dir": r.dir, "args": r.args, "limit": r.limit_source}))
        .collect();
    let labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "oomlab".to_string()),
        (
            "oomlab.dev/sweep".to_string(),
            dns_label(&target.results_id),
        ),
    ]);
    let resources = ResourceRequirements {
        limits: Some(BTreeMap::from([("memory".to_string(), q.clone())])),
        // Requested as limited: the scheduler places a pod only where its
        // whole limit is free, so neighbours do not squeeze the rehearsal.
        requests: Some(BTreeMap::from([
            ("memory".to_string(), q.clone()),
            ("cpu".to_string(), Quantity("1".into())),
        ])),
        ..Default::default()
    };
    let container = Container {
        name: "oomlab".into(),
        image: Some(target.image.clone()),
        command: Some(vec!["/bin/sh".into(), "-c".into(), script(runs)]),
        env: Some(vec![EnvVar {
            name: "OOMLAB_CACHE_DIR".into(),
            value: Some(CACHE_MOUNT.into()),
            ..Default::default()
        }]),
        resources: Some(resources),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "results".into(),
                mount_path: RESULTS_MOUNT.into(),
                ..Default::default()
            },
            VolumeMount {
                name: "cache".into(),
                mount_path: CACHE_MOUNT.into(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let completions =
        i32::try_from(runs.len()).context("more runs than a Job's completions can count")?;
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: target.namespace.clone(),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(
                RUNS_ANNOTATION.to_string(),
                serde_json::to_string(&listed)?,
            )])),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(completions),
            parallelism: Some(
                target
                    .parallelism
                    .map_or(completions, |p| i32::try_from(p).unwrap_or(i32::MAX)),
            ),
            // A run killed at its limit is an observation, not a flake:
            // never retried, and the other indexes go on.
            backoff_limit_per_index: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![container],
                    node_selector: (!target.node_selector.is_empty())
                        .then(|| target.node_selector.clone()),
                    volumes: Some(vec![
                        Volume {
                            name: "results".into(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: target.volume_claim.clone(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        Volume {
                            name: "cache".into(),
                            empty_dir: Some(EmptyDirVolumeSource::default()),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The Jobs of a sweep: one per distinct limit, smallest first, each run
/// at the index its position in that Job gives it.
pub fn jobs(target: &Target, runs: &[PodRun]) -> Result<Vec<Job>> {
    let mut by_limit: BTreeMap<u64, Vec<&PodRun>> = BTreeMap::new();
    for run in runs {
        by_limit.entry(run.limit_bytes).or_default().push(run);
    }
    by_limit
        .iter()
        .map(|(limit, runs)| job(target, runs, *limit))
        .collect()
}

impl Emitter for Kubernetes {
    /// The Jobs as one JSON `JobList` (batch/v1), which `kubectl apply -f`
    /// reads whether the file is named `.json` or `.yaml` or piped.
    fn render(&self, target: &Target, runs: &[PodRun]) -> Result<String> {
        let list = List::<Job> {
            items: jobs(target, runs)?,
            metadata: Default::default(),
        };
        Ok(serde_json::to_string_pretty(&list)? + "\n")
    }
}
