"""The pytest plugin through a real pytest run: a pipeline test under its per-row
limit passes, one with a planted `df.copy()` fails naming the stage and its
bytes per row, and `--oomlab-baseline` gates against blessed figures.

Every inner test asserts it runs in oomlab's child (`OOMLAB_PYTEST_CHILD`), so
a plugin that ran a marked test in the pytest process would fail here.
"""

import json
import re

import pytest

# A pipeline of 100 float64 columns (800 B/row). `enrich` holds the frame and
# its product (about 1,600 B/row at its peak); the planted copy adds a third
# frame (about 2,400 B/row). The limit of 2,000 sits between them with a
# margin far above the slope's noise (a few MiB over 150,000 rows: ~30 B/row).
PIPELINE = '''
import logging
import os
import time

import numpy as np
import pandas as pd
import pytest

log = logging.getLogger("pipeline")
ROWS = [50_000, 100_000, 200_000]


def load(rows):
    log.info("[stage] load")
    rng = np.random.default_rng(7)
    return pd.DataFrame(rng.random((rows, 100)), columns=[f"f{i}" for i in range(100)])


def enrich(df):
    log.info("[stage] enrich")
    out = df * 1.0
    return float(out["f0"].sum())


def run(rows):
    assert os.environ.get("OOMLAB_PYTEST_CHILD") == "1", "measured in the pytest process"
    return enrich(load(rows))


@pytest.mark.oomlab(rows=ROWS, max_bytes_per_row=2000, production_rows=8_532_146)
def test_clean(oomlab_rows):
    assert run(oomlab_rows) > 0


@pytest.mark.oomlab(rows=ROWS, max_bytes_per_row=2000, production_rows=8_532_146)
def test_planted_copy(oomlab_rows):
    assert run_planted(oomlab_rows) > 0


def run_planted(rows):
    assert os.environ.get("OOMLAB_PYTEST_CHILD") == "1", "measured in the pytest process"
    df = load(rows)
    log.info("[stage] enrich")
    copied = df.copy()
    out = copied * 1.0
    # A stage that only holds what `enrich` left: the same slope, and the
    # failure names `enrich`, the first of the two. It holds the frames a
    # moment, so a marker line read late still finds them alive.
    log.info("[stage] done")
    time.sleep(0.3)
    return float(out["f0"].sum()) + float(df["f1"].sum())
'''


def slopes(text, stage):
    """Every `STAGE: N B/row` figure in a pytest output."""
    return [int(v.replace(",", "")) for v in re.findall(rf"\b{stage}: ([\d,]+) B/row", text)]


def test_limit_passes_the_clean_test_and_fails_the_planted_copy(pytester):
    pytester.makepyfile(test_pipeline=PIPELINE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    out = result.stdout.str()
    result.assert_outcomes(passed=1, failed=1)
    # The failure names the stage, its cost per row, the limit and the price.
    failure = out[out.index("test_planted_copy _"):]
    assert "oomlab: stage `enrich` costs" in failure, out
    assert "over the limit of 2,000 B/row" in failure, out
    assert "production rows" in failure and "8,532,146" in failure, out
    [planted] = slopes(failure.split("measured at")[0], "enrich")
    assert planted > 2000, out
    # The clean test's costliest stage is reported under the limit.
    summary = out[out.index("oomlab: costliest stage per row"):]
    clean_line = next(line for line in summary.splitlines() if "::test_clean:" in line)
    [clean] = slopes(clean_line, "enrich")
    assert 1000 < clean < 2000, out
    # The copy costs about one frame more per row (800 B/row), within a wide margin.
    assert 400 < planted - clean < 1400, out


def test_baseline_blesses_then_fails_a_planted_copy(pytester):
    pytester.makepyfile(
        test_gated='''
import logging, os
import numpy as np, pandas as pd, pytest
log = logging.getLogger("pipeline")
COPY = os.environ.get("PLANT_COPY") == "1"

@pytest.mark.oomlab(rows=[50_000, 100_000, 200_000], production_rows=8_532_146)
def test_prepare(oomlab_rows):
    assert os.environ.get("OOMLAB_PYTEST_CHILD") == "1"
    log.info("[stage] load")
    df = pd.DataFrame(np.random.default_rng(1).random((oomlab_rows, 100)))
    log.info("[stage] merge")
    work = df.copy() if COPY else df
    out = work * 1.0
    log.info("[stage] done")
    assert out.shape[0] == oomlab_rows
'''
    )
    baseline = pytester.path / "memory-baseline.json"
    # Two runs a size: a short stage (`fixtures`, `test`) can take in a few MiB
    # of the next one when its marker line is read late on a loaded machine;
    # the spread of the runs' slopes is then the gate's floor, as in CI.
    runs = "--oomlab-runs=2"
    blessed = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--oomlab-baseline={baseline}", "--oomlab-update", runs
    )
    blessed.assert_outcomes(passed=1)
    entry = json.loads(baseline.read_text())["commands"][0]
    assert entry["argv"][1:] == ["-m", "oomlab_pytest.child", "test_gated.py::test_prepare"]
    assert {"load", "merge"} <= {s["name"] for s in entry["stages"]}

    unchanged = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--oomlab-baseline={baseline}", runs
    )
    unchanged.assert_outcomes(passed=1)

    import os

    os.environ["PLANT_COPY"] = "1"
    try:
        copied = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", f"--oomlab-baseline={baseline}", runs
        )
    finally:
        del os.environ["PLANT_COPY"]
    copied.assert_outcomes(failed=1)
    out = copied.stdout.str()
    assert "REGRESSION" in out, out
    assert re.search(r"merge: [\d,]+ -> [\d,]+ B/row \(\+\d+%\)", out), out


def test_a_test_failing_in_the_child_is_reported_with_its_output(pytester):
    pytester.makepyfile(
        test_broken='''
import pytest

@pytest.mark.oomlab(rows=[1000, 2000, 4000])
def test_broken(oomlab_rows):
    assert oomlab_rows < 0, "the child's own assertion message"
'''
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "the test failed (or crashed) in the measured child" in out, out
    assert "the child's own assertion message" in out, out


def test_bad_marker_is_a_usage_error(pytester):
    pytester.makepyfile(
        test_bad='''
import pytest

@pytest.mark.oomlab(rows=[1000])
def test_one_size(oomlab_rows):
    pass
'''
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0
    assert "rows= must be a list of at least two distinct positive integers" in out, out
