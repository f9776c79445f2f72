#!/usr/bin/env python3
r"""Reference numpy implementation of the item-item similarity that oomlab replays.

The write-up's first OOM (500,000 items: 200 GB before commit 261674c, 8 GB after,
with SIMILARITY_MICRO_BATCH_SIZE=50 and SIMILARITY_TOP_K=200), written as a team
writes it in numpy, so `oomlab sweep --items ... -- CMD` measures real numpy bytes:

  old  cosine similarity of every item against every item: `unit @ unit.T` (an
       N x N float32 matrix), the diagonal masked, then `np.argsort(-sims, axis=1)`
       and the first K columns (argsort's N x N int64 order and the negated
       N x N copy are alive at once with the matrix).
  new  micro-batches (commit 261674c): `unit[start:start + B] @ unit.T` (B x N),
       `np.argpartition(-sims, K - 1, axis=1)[:, :K]`, the K survivors sorted,
       written into N x K (int64 index, float32 score) arrays; nothing of a batch
       outlives it.

Inputs are an oomlab similarity cache slot (`{data_dir}` of a sweep on
scenarios/similarity.toml, or `oomlab data --scenario scenarios/similarity.toml`):
`items.f32le` (row-major little-endian float32) and `meta.json` (its items and
dimension), read with np.fromfile, so no one writes a generator.

Output (stdout, flushed line by line):
  INFO python <v> numpy <v>     first: the versions (`oomlab sweep -- CMD` records them)
  INFO [stage] <name>           at the start of every stage (the replay's stage names)
  INFO <log line>               the pipeline's similarity lines, as the replay prints
                                them (`Computing item similarity: ...`, `Similarity
                                computed: ...`); `oomlab postmortem` reads them
  OOMLAB_RESULT {json}          last line: items, knobs, per-stage wall times, ru_maxrss

Usage:
  python3 scenarios/pandas/similarity.py --strategy old|new --data-dir DIR
      [--items N]                 first N items of the slot (default: all)
      [--micro-batch-size B]      else $SIMILARITY_MICRO_BATCH_SIZE, else 50
      [--top-k K]                 else $SIMILARITY_TOP_K, else 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

# Names of the files in an oomlab similarity cache slot (src/strategy/similarity/mod.rs).
ITEMS_FILE = "items.f32le"
META_FILE = "meta.json"

# The write-up's .env values (相似度计算优化).
DEFAULT_MICRO_BATCH_SIZE = 50
DEFAULT_TOP_K = 200

STAGES = {
    "old": ["load", "normalize", "similarity_matrix", "top_k"],
    "new": ["load", "normalize", "micro_batches"],
}

# Progress lines per run of the new strategy (about one per tenth of the batches).
PROGRESS_LINES = 10


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
    """A marker line at each stage's start; wall time and RSS per stage."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self._open: tuple[str, float] | None = None

    def start(self, name: str) -> None:
        self.stop()
        info(f"[stage] {name}")
        self._open = (name, time.perf_counter())

    def stop(self) -> None:
        if self._open is None:
            return
        name, t0 = self._open
        self._open = None
        self.records.append(
            {
                "name": name,
                "wall_s": round(time.perf_counter() - t0, 6),
                "rss_end_bytes": _status_bytes("VmRSS"),
                "hwm_end_bytes": _status_bytes("VmHWM"),
            }
        )


def resolve_data_dir(path: Path) -> Path:
    """The cache slot: `path` itself, or its only subdirectory holding the vectors."""
    if (path / ITEMS_FILE).is_file():
        return path
    slots = sorted(p for p in path.glob("*") if p.is_dir() and (p / ITEMS_FILE).is_file())
    if len(slots) == 1:
        return slots[0]
    if not slots:
        sys.exit(f"error: {path} holds no {ITEMS_FILE} (pass an oomlab similarity cache slot)")
    listing = "\n  ".join(str(s) for s in slots)
    sys.exit(f"error: {path} holds several cache slots; pass one of:\n  {listing}")


def load_embeddings(data_dir: Path, items: int | None) -> np.ndarray:
    """The slot's item vectors as an N x D float32 array (its first `items` rows)."""
    meta = json.loads((data_dir / META_FILE).read_text())
    n, dim = int(meta["sizes"]["items"]), int(meta["sizes"]["dimension"])
    if items is not None:
        if items > n:
            sys.exit(f"error: --items {items}: the slot {data_dir} holds {n} items")
        n = items
    return np.fromfile(data_dir / ITEMS_FILE, dtype="<f4", count=n * dim).reshape(n, dim)


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalised rows (a new array; the raw embeddings stay alive beside it)."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return embeddings / norms


def similarity_old(unit: np.ndarray, k: int, stages: Stages) -> tuple[np.ndarray, np.ndarray]:
    """Before 261674c: the whole N x N matrix, then argsort of every row."""
    n = unit.shape[0]
    stages.start("similarity_matrix")
    info(f"Computing item similarity: {n} x {n} matrix ({n * n * 4 / 1e6:.2f} MB)")
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    stages.start("top_k")
    info(f"Selecting top {k} neighbours per item...")
    order = np.argsort(-sims, axis=1)
    top_idx = order[:, :k].copy()
    top_val = np.take_along_axis(sims, top_idx, axis=1)
    # sims and order live until the function returns, as in the original.
    return top_idx, top_val


def similarity_new(
    unit: np.ndarray, batch: int, k: int, knobs: tuple[int, int], stages: Stages
) -> tuple[np.ndarray, np.ndarray]:
    """After 261674c: B items against all N at a time, reduced to top K at once."""
    n = unit.shape[0]
    stages.start("micro_batches")
    batches = -(-n // batch)
    info(
        f"Computing item similarity: {n} items in {batches} micro-batches of {batch} "
        f"(SIMILARITY_MICRO_BATCH_SIZE={knobs[0]}), top {k} (SIMILARITY_TOP_K={knobs[1]})"
    )
    top_idx = np.empty((n, k), dtype=np.int64)
    top_val = np.empty((n, k), dtype=np.float32)
    every = max(1, -(-batches // PROGRESS_LINES))
    t0 = time.perf_counter()
    for i, start in enumerate(range(0, n, batch)):
        end = min(start + batch, n)
        sims = unit[start:end] @ unit.T  # B x N, freed at the next batch
        rows = np.arange(end - start)
        sims[rows, rows + start] = -np.inf  # not its own neighbour
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-vals, axis=1)
        top_idx[start:end] = np.take_along_axis(part, order, axis=1)
        top_val[start:end] = np.take_along_axis(vals, order, axis=1)
        del sims, part, vals, order
        if (i + 1) % every == 0 and i + 1 < batches:
            rate = end / max(time.perf_counter() - t0, 1e-9)
            info(f"Similarity micro-batch {i + 1}/{batches}: {end} items scored ({rate:.0f} items/s)")
    return top_idx, top_val


def knob(flag: int | None, env: str, default: int) -> tuple[int, str]:
    """A knob from its flag, else the environment (the pipeline's .env), else the default."""
    if flag is not None:
        value, source = flag, "flag"
    else:
        text = os.environ.get(env, "").strip()
        if not text:
            return default, "default"
        try:
            value, source = int(text), "env"
        except ValueError:
            sys.exit(f"error: {env}={text!r} is not a whole number")
    if value <= 0:
        sys.exit(f"error: {env}={value}: expected a positive whole number")
    return value, source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", required=True, choices=sorted(STAGES))
    parser.add_argument("--data-dir", required=True, type=Path,
                        help="oomlab similarity cache slot (or a root holding exactly one)")
    parser.add_argument("--items", type=int, default=None, help="first N items (default: all)")
    parser.add_argument("--micro-batch-size", type=int, default=None,
                        help="items per micro-batch (new); overrides $SIMILARITY_MICRO_BATCH_SIZE")
    parser.add_argument("--top-k", type=int, default=None,
                        help="neighbours kept per item; overrides $SIMILARITY_TOP_K")
    args = parser.parse_args(argv)
    batch, batch_source = knob(args.micro_batch_size, "SIMILARITY_MICRO_BATCH_SIZE",
                               DEFAULT_MICRO_BATCH_SIZE)
    top_k, top_k_source = knob(args.top_k, "SIMILARITY_TOP_K", DEFAULT_TOP_K)
    data_dir = resolve_data_dir(args.data_dir)

    info(f"python {sys.version.split()[0]} numpy {np.__version__}")
    stages = Stages()
    t0 = time.perf_counter()
    stages.start("load")
    embeddings = load_embeddings(data_dir, args.items)
    n, dim = embeddings.shape
    info(f"Item vectors: {n} items x {dim} dimensions ({embeddings.nbytes / 1e6:.2f} MB)")
    stages.start("normalize")
    unit = normalize(embeddings)
    k = min(top_k, n - 1)
    if k < 1:
        sys.exit(f"error: {n} item(s): nothing to compare")
    scoring = time.perf_counter()
    if args.strategy == "old":
        top_idx, top_val = similarity_old(unit, k, stages)
    else:
        top_idx, top_val = similarity_new(unit, min(batch, n), k, (batch, top_k), stages)
    secs = max(time.perf_counter() - scoring, 1e-9)
    pairs_mb = (top_idx.nbytes + top_val.nbytes) / 1e6
    info(
        f"Similarity computed: {n} items, top {k} neighbours each "
        f"({top_idx.size} pairs, {pairs_mb:.2f} MB), {n / secs:.0f} items/s"
    )
    stages.stop()
    wall = time.perf_counter() - t0

    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "strategy": args.strategy,
        "data_dir": str(data_dir),
        "items": int(n),
        "dimension": int(dim),
        "micro_batch_size": batch,
        "micro_batch_size_source": batch_source,
        "top_k": top_k,
        "top_k_source": top_k_source,
        "items_per_s": round(n / secs, 3),
        "stages": stages.records,
        "wall_s": round(wall, 6),
        "ru_maxrss_kib": int(usage.ru_maxrss),  # Linux: KiB
        "ru_maxrss_bytes": int(usage.ru_maxrss) * 1024,
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__},
    }
    print("OOMLAB_RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
