#!/usr/bin/env python3
r"""Reference pandas implementation of the ranking-data preparation that oomlab replays.

Two strategies, the same as oomlab's `legacy` and `optimized` (src/strategy/):

  legacy     the pre-v2 code of oom-fix-v2.md: samples.copy(), dropna, merge the
             whole dataset profile, merge the user features; the caller keeps
             `samples` until the end.
  optimized  v2: optimize_dataframe_memory() on load, dropna without a copy,
             optional MAX_RANKING_SAMPLES sampling (random_state=42), numeric-only
             profile merge, `del` + gc.collect(), user merge,
             optimize_dataframe_memory() on the result. Stage order as
             src/strategy/optimized.rs.

Inputs are an oomlab Parquet data cache slot (`oomlab data` writes one): the same
files every oomlab strategy loads, read with pd.read_parquet (pyarrow), as a
pipeline reads them under whatever pandas it runs: strings are object columns
under pandas 2.x, and the pyarrow-backed `str` dtype under pandas 3 (no option
is forced either way: the figures are what that pandas pays).

Output (stdout, flushed line by line):
  INFO python <v> pandas <v>   first: the versions (`oomlab sweep -- CMD` records them)
  INFO [stage] <name>          at the start of every stage (oomlab's stage names)
  INFO <write-up log line>     the pipeline's own lines (oom-fix-v2.md format)
  OOMLAB_RESULT {json}         last line: rows, columns, per-stage wall times, ru_maxrss

Usage:
  python3 scenarios/pandas/ranking_prep.py --strategy legacy|optimized --data-dir DIR
      [--max-ranking-samples N]      (else $MAX_RANKING_SAMPLES; 0 = no limit)

Under `oomlab record`, cut stages at the `[stage]` lines only:
  oomlab record --stage-pattern '^INFO \[stage\] (\S+)$' -- python3 scenarios/pandas/ranking_prep.py ...
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow

# Names of the files in an oomlab cache slot (src/data/cache.rs).
SAMPLES_FILE = "ranking_samples.parquet"
PROFILE_FILE = "dataset_profile.parquet"
USERS_FILE = "user_features.parquet"

# Column names (src/data/mod.rs, `columns`).
DATASET_ID = "dataset_id"
USER_ID = "user_id"
LABEL = "label"

# `sample(n=MAX_RANKING_SAMPLES, random_state=42)` (oom-fix-v2.md, Q4).
SAMPLING_SEED = 42

STAGES = {
    "legacy": ["load", "copy", "dropna", "merge_dataset_profile", "merge_user_features"],
    "optimized": [
        "load",
        "dropna",
        "sample",
        "slim_profile",
        "merge_dataset_profile",
        "free_intermediates",
        "merge_user_features",
        "downcast",
    ],
}

def info(message: str) -> None:
    """One log line of the pipeline, at level INFO, on stdout at once."""
    print(f"INFO {message}", flush=True)


def _status_bytes(field: str) -> int | None:
    """A `VmRSS`/`VmHWM` figure of this process in bytes (Linux), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Stages:
    """Stage bookkeeping: a marker line at each start, wall time and RSS per stage.

    It never resets the kernel's high-water mark (that would corrupt ru_maxrss and
    what /usr/bin/time or `oomlab record` read); `hwm_end_bytes` is the process
    peak so far at the stage's end.
    """

    def __init__(self) -> None:
        self.records: list[dict] = []
        self._open: tuple[str, float, int | None] | None = None

    def start(self, name: str) -> None:
        self.stop()
        info(f"[stage] {name}")
        self._open = (name, time.perf_counter(), _status_bytes("VmRSS"))

    def stop(self) -> None:
        if self._open is None:
            return
        name, t0, rss0 = self._open
        self._open = None
        self.records.append(
            {
                "name": name,
                "wall_s": round(time.perf_counter() - t0, 6),
                "rss_start_bytes": rss0,
                "rss_end_bytes": _status_bytes("VmRSS"),
                "hwm_end_bytes": _status_bytes("VmHWM"),
            }
        )


# --------------------------------------------------------------------------- loading


def resolve_data_dir(path: Path) -> Path:
    """The cache slot: `path` itself, or its only subdirectory holding the files."""
    if (path / SAMPLES_FILE).is_file():
        return path
    slots = sorted(p for p in path.glob("*") if p.is_dir() and (p / SAMPLES_FILE).is_file())
    if len(slots) == 1:
        return slots[0]
    if not slots:
        sys.exit(f"error: {path} holds no {SAMPLES_FILE} (pass an oomlab cache slot directory)")
    listing = "\n  ".join(str(s) for s in slots)
    sys.exit(f"error: {path} holds several cache slots; pass one of:\n  {listing}")


def read_frame(path: Path) -> pd.DataFrame:
    """pd.read_parquet with pyarrow, as the pipeline reads its inputs.

    oomlab stores string and categorical profile columns alike as Parquet
    strings (generate.rs): pandas 2.x loads them as object columns, pandas 3
    as its default `str` dtype (pyarrow-backed). Neither is converted: the
    figures are those of the pandas that runs this.
    """
    return pd.read_parquet(path, engine="pyarrow")


def load_inputs(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    samples = read_frame(data_dir / SAMPLES_FILE)
    profile = read_frame(data_dir / PROFILE_FILE)
    users = read_frame(data_dir / USERS_FILE)
    return samples, profile, users


# --------------------------------------------------------------------------- v2 helpers


def _narrowest_int(lo: int, hi: int) -> type:
    for t in (np.int8, np.int16, np.int32):
        info_t = np.iinfo(t)
        if lo >= info_t.min and hi <= info_t.max:
            return t
    return np.int64


def frame_mb(df: pd.DataFrame) -> float:
    """What the write-up's function reports: memory_usage(deep=True), in MB (1e6 bytes,
    as oomlab prints MB)."""
    return float(df.memory_usage(index=True, deep=True).sum()) / 1e6


def optimize_dataframe_memory(df: pd.DataFrame, log: bool = False) -> pd.DataFrame:
    """The pipeline's optimize_dataframe_memory(): signed integers to the narrowest
    type holding their range, float64 to float32, everything else as it is.

    Columns are replaced one at a time (`df[col] = ...`), as the pipeline does, so
    the transient cost is a column (plus whatever pandas keeps of a split block).
    """
    before = frame_mb(df) if log else 0.0
    for col in df.columns:
        dtype = df[col].dtype
        if dtype == np.float64:
            target = np.float32
        elif dtype in (np.int64, np.int32, np.int16):
            lo, hi = df[col].min(), df[col].max()
            if pd.isna(lo) or pd.isna(hi):
                continue
            target = _narrowest_int(int(lo), int(hi))
        else:
            continue
        if dtype == target:
            continue
        df[col] = df[col].astype(target)
    if log:
        after = frame_mb(df)
        reduction = (before - min(after, before)) / before * 100.0 if before > 0 else 0.0
        info(f"Memory optimization: {before:.2f} MB -> {after:.2f} MB ({reduction:.1f}% reduction)")
    return df


# --------------------------------------------------------------------------- strategies


def prepare_legacy(
    samples: pd.DataFrame,
    dataset_profile: pd.DataFrame,
    user_features: pd.DataFrame,
    stages: Stages,
) -> pd.DataFrame:
    """The pre-v2 _prepare_request_ranking_data(): copy, dropna, merge everything."""
    stages.start("copy")
    working = samples.copy()
    stages.start("dropna")
    working = working.dropna(subset=[LABEL])
    stages.start("merge_dataset_profile")
    info(f"Merging with dataset features ({dataset_profile.shape[1] - 1} columns)...")
    enriched = working.merge(dataset_profile, on=DATASET_ID, how="left")
    stages.start("merge_user_features")
    info(f"Merging with user features ({user_features.shape[1] - 1} columns)...")
    enriched = enriched.merge(user_features, on=USER_ID, how="left")
    stages.stop()
    return enriched


def run_legacy(data_dir: Path, stages: Stages) -> pd.DataFrame:
    stages.start("load")
    samples, dataset_profile, user_features = load_inputs(data_dir)
    info(f"Ranking samples: {len(samples)} rows before optimization")
    stages.stop()
    info(
        f"Preparing ranking data (samples: {len(samples)} rows, "
        f"datasets: {len(dataset_profile)})"
    )
    # The caller holds `samples` (and both lookups) until the end, as in the pipeline.
    enriched = prepare_legacy(samples, dataset_profile, user_features, stages)
    info(f"Ranking data prepared: {len(enriched)} rows, {enriched.shape[1] - 1} features")
    return enriched


def run_optimized(data_dir: Path, max_ranking_samples: int, stages: Stages) -> pd.DataFrame:
    stages.start("load")
    samples, dataset_profile, user_features = load_inputs(data_dir)
    info(f"Ranking samples: {len(samples)} rows before optimization")
    samples = optimize_dataframe_memory(samples)

    stages.start("dropna")
    working = samples.dropna(subset=[LABEL])  # no copy first
    # As oomlab's optimized.rs: the loaded frame is not held past dropna.
    del samples

    stages.start("sample")
    rows = len(working)
    if max_ranking_samples > 0 and rows > max_ranking_samples:
        info(
            f"Sampling ranking data: {rows} -> {max_ranking_samples} rows "
            "(set MAX_RANKING_SAMPLES=0 to disable)"
        )
        working = working.sample(n=max_ranking_samples, random_state=SAMPLING_SEED)
    info(f"Ranking samples optimized: {len(working)} rows")

    stages.start("slim_profile")
    info(
        f"Preparing ranking data (samples: {len(working)} rows, "
        f"datasets: {len(dataset_profile)})"
    )
    numeric_cols = [
        c for c in dataset_profile.select_dtypes(include="number").columns if c != DATASET_ID
    ]
    dataset_profile_slim = dataset_profile[[DATASET_ID] + numeric_cols]

    stages.start("merge_dataset_profile")
    info(f"Merging with dataset features ({len(numeric_cols)} columns)...")
    enriched = working.merge(dataset_profile_slim, on=DATASET_ID, how="left")

    stages.start("free_intermediates")
    del working, dataset_profile_slim
    gc.collect()

    stages.start("merge_user_features")
    info(f"Merging with user features ({user_features.shape[1] - 1} columns)...")
    enriched = enriched.merge(user_features, on=USER_ID, how="left")

    stages.start("downcast")
    info("Optimizing enriched DataFrame memory usage...")
    enriched = optimize_dataframe_memory(enriched, log=True)
    stages.stop()

    info(f"Ranking data prepared: {len(enriched)} rows, {enriched.shape[1] - 1} features")
    return enriched


# --------------------------------------------------------------------------- main


def max_samples_setting(flag: int | None) -> tuple[int, str]:
    if flag is not None:
        return flag, "flag"
    env = os.environ.get("MAX_RANKING_SAMPLES", "").strip()
    if env:
        try:
            return int(env), "env"
        except ValueError:
            sys.exit(f"error: MAX_RANKING_SAMPLES={env!r} is not a whole number")
    return 0, "default"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", required=True, choices=sorted(STAGES))
    parser.add_argument("--data-dir", required=True, type=Path,
                        help="oomlab Parquet cache slot (or a root holding exactly one)")
    parser.add_argument("--max-ranking-samples", type=int, default=None,
                        help="cap on ranking samples (optimized only); overrides "
                        "$MAX_RANKING_SAMPLES; 0 = no limit")
    args = parser.parse_args(argv)
    cap, cap_source = max_samples_setting(args.max_ranking_samples)
    if cap < 0:
        sys.exit("error: --max-ranking-samples must be >= 0")
    data_dir = resolve_data_dir(args.data_dir)

    info(f"python {sys.version.split()[0]} pandas {pd.__version__} pyarrow {pyarrow.__version__}")
    stages = Stages()
    t0 = time.perf_counter()
    if args.strategy == "legacy":
        enriched = run_legacy(data_dir, stages)
    else:
        enriched = run_optimized(data_dir, cap, stages)
    wall = time.perf_counter() - t0

    usage = resource.getrusage(resource.RUSAGE_SELF)
    dtypes: dict[str, int] = {}
    for dtype in enriched.dtypes:
        dtypes[str(dtype)] = dtypes.get(str(dtype), 0) + 1
    result = {
        "strategy": args.strategy,
        "data_dir": str(data_dir),
        "max_ranking_samples": cap if args.strategy == "optimized" else 0,
        "max_ranking_samples_source": cap_source,
        "rows": int(len(enriched)),
        "columns": int(enriched.shape[1]),
        "features": int(enriched.shape[1] - 1),
        "dtypes": dtypes,
        "output_bytes": int(enriched.memory_usage(index=True, deep=False).sum()),
        "stages": stages.records,
        "wall_s": round(wall, 6),
        "ru_maxrss_kib": int(usage.ru_maxrss),  # Linux: KiB
        "ru_maxrss_bytes": int(usage.ru_maxrss) * 1024,
        "versions": {
            "python": sys.version.split()[0],
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "pyarrow": pyarrow.__version__,
        },
    }
    print("OOMLAB_RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
