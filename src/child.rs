//! The hidden `__child` entry point: one job, measured, in its own process.
//!
//! The parent re-executes its own binary with a JSON job. The child fixes its
//! allocator's behaviour first (so freed buffers leave RSS and peaks are
//! comparable between runs), then runs the job's stages under a probe.

use anyhow::{Context, Result};
use serde_json::json;

use crate::data::cache::{DataCache, DataMeta, GENERATOR_VERSION};
use crate::data::{generate, hash};
use crate::probe::Probe;
use crate::strategy::{self, Job, GENERATE};

/// The allocator children run with, named in every report.
pub const ALLOCATOR: &str =
    "glibc malloc (system allocator) with M_MMAP_THRESHOLD and M_TRIM_THRESHOLD fixed at 128 KiB";

/// Pins glibc's thresholds: buffers over 128 KiB are mmapped and returned on
/// free, instead of glibc's default of raising the threshold after each free
/// (which would keep freed frames in RSS and make peaks depend on history).
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// Runs a job given as JSON; the exit status tells the parent if it failed.
pub fn main(job_json: &str) -> Result<()> {
    // Pinned in `pandas` mode too: glibc at its defaults keeps freed mid-sized
    // buffers in RSS depending on the history of the process's own
    // allocations, which the replay's history does not share with CPython's;
    // measured against pandas, the defaults made stage figures drift further
    // (e.g. no drop at `free_intermediates`), so they are not emulated.
    configure_allocator();
    let job: Job = serde_json::from_str(job_json).context("parsing the child job")?;
    // Only a job that asks for heap figures pays for dhat (see alloc.rs).
    let _heap_profiler = job.heap_profile.then(crate::alloc::HeapProfiler::start);
    let probe = Probe::new();
    let workload = job.scenario.workload();
    if job.strategy == GENERATE {
        if workload == crate::scenario::Workload::Similarity {
            return strategy::similarity::generate_data(&job, &probe);
        }
        return generate_data(&job, &probe);
    }
    let strategy = strategy::by_name_for(workload, &job.strategy)
        .with_context(|| format!("unknown strategy `{}`", job.strategy))?;
    strategy.run(&job, &probe)
}

fn generate_data(job: &Job, probe: &Probe) -> Result<()> {
    let cache = DataCache {
        dir: job.cache_dir.clone(),
    };
    probe.stage(GENERATE, |d| {
        probe.info(format!(
            "Generating synthetic data: {} samples, {} datasets x {} columns, {} users (seed {})",
            job.sizes.sample_rows,
            job.sizes.datasets,
            job.sizes.profile_columns,
            job.sizes.users,
            job.scenario.seed
        ));
        let mut inputs = generate::generate(&job.scenario, &job.sizes)?;
        let data_hash = hash::frames_hash(&[&inputs.samples, &inputs.profile, &inputs.users]);
        let meta = DataMeta {
            generator_version: GENERATOR_VERSION,
            sizes: job.sizes,
            seed: job.scenario.seed,
            data_hash: data_hash.clone(),
        };
        cache.store(&mut inputs, &meta)?;
        probe.info(format!(
            "Data cached at {} (hash {data_hash})",
            cache.dir.display()
        ));
        d.insert("data_hash".into(), json!(data_hash));
        d.insert("rows".into(), json!(job.sizes.sample_rows));
        Ok(())
    })
}
