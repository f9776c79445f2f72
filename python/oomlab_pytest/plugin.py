"""The pytest11 entry point: ``@pytest.mark.oomlab`` and the ``oomlab_rows`` fixture.

A marked test is never run in the pytest process. For each marked test the
plugin runs the ``oomlab`` binary, which runs ``python -m oomlab_pytest.child
NODEID`` at each size (the size in ``$OOMLAB_ROWS``), cuts stages at the
test's log lines and fits each stage's per-row cost, exactly as
``oomlab gate -- CMD`` does for any command. The plugin only reads what oomlab
wrote and turns it into a pass or a failure; it measures and fits nothing
itself. See docs/pytest.md.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

import pytest

#: Set in the measured child: there the marked test runs in-process.
CHILD_ENV = "OOMLAB_PYTEST_CHILD"

_MARKER_HELP = (
    "oomlab(rows, max_bytes_per_row=None, production_rows=None, runs=None, "
    "stage_pattern=None): run this test in a child at each of `rows` "
    "(the `oomlab_rows` fixture), measured by oomlab; fail when a stage costs "
    "more than max_bytes_per_row, or, with --oomlab-baseline, when a stage "
    "regressed against its blessed figures"
)


def pytest_addoption(parser):
    """The session's knobs; the marker holds what is per test."""
    group = parser.getgroup("oomlab", "memory per row, measured by oomlab (docs/pytest.md)")
    group.addoption(
        "--oomlab-baseline",
        metavar="FILE",
        default=None,
        help="judge each marked test against its blessed entry in this oomlab gate "
        "baseline (as `oomlab gate --baseline FILE -- CMD`)",
    )
    group.addoption(
        "--oomlab-update",
        action="store_true",
        default=False,
        help="with --oomlab-baseline: bless what is measured now into FILE instead of judging",
    )
    group.addoption(
        "--oomlab-runs",
        type=int,
        default=None,
        metavar="N",
        help="runs per size, figures are medians (default: the marker's `runs`, "
        "else 3 with --oomlab-baseline and 1 without)",
    )
    group.addoption(
        "--oomlab-production-rows",
        type=int,
        default=None,
        metavar="N",
        help="rows production loads: the per-row cost is priced there "
        "(default: the marker's production_rows, else the ini option oomlab_production_rows)",
    )
    group.addoption(
        "--oomlab-out",
        metavar="DIR",
        default=None,
        help="where oomlab's reports go (default: a directory under pytest's basetemp)",
    )
    group.addoption(
        "--oomlab-bin",
        metavar="PATH",
        default=None,
        help="the oomlab binary (default: $OOMLAB_BIN, else the one installed beside this "
        "Python, else `oomlab` on $PATH)",
    )
    parser.addini(
        "oomlab_production_rows",
        "rows production loads, for the price of a per-row cost",
        default="",
    )


def pytest_configure(config):
    """Registers the marker, so `--strict-markers` accepts it."""
    config.addinivalue_line("markers", _MARKER_HELP)
    config._oomlab_lines = []


def _in_child():
    return bool(os.environ.get(CHILD_ENV))


@pytest.fixture
def oomlab_rows(request):
    """The row count this run of the test works at: oomlab sets it per size."""
    value = os.environ.get("OOMLAB_ROWS")
    if _in_child() and value:
        return int(value)
    marker = request.node.get_closest_marker("oomlab")
    if marker is None:
        raise pytest.UsageError(
            "the oomlab_rows fixture is set by @pytest.mark.oomlab(rows=[...]) "
            f"({request.node.nodeid} has no such marker)"
        )
    # Reached only when the plugin did not take the test over (e.g. a test
    # run by hand with OOMLAB_PYTEST_CHILD set but no size).
    raise pytest.UsageError(
        f"{request.node.nodeid}: run under oomlab, which sets $OOMLAB_ROWS at each size"
    )


# --- the measured child ----------------------------------------------------


def _stage(name):
    """A marker line for oomlab, then a moment for oomlab to read it: a stage
    starts when oomlab reads its line, and one read late takes in what the
    next stage allocates first (a few MiB that read as a per-row cost)."""
    print(f"INFO [stage] {name}", flush=True)
    time.sleep(0.05)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """In the child, a stage for the fixtures, so their rows are named."""
    if _in_child() and item.get_closest_marker("oomlab") is not None:
        _stage("fixtures")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    """In the child, a stage for the test body up to its own first marker line."""
    if _in_child() and item.get_closest_marker("oomlab") is not None:
        _stage("test")


# --- the parent: a marked test becomes an oomlab run ------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """Runs a marked test through oomlab instead of in this process.

    Setup, call and teardown are reported as pytest reports them, so `-x`,
    junit XML and the terminal see an ordinary test; the test's fixtures are
    set up only in the child, where they are measured.
    """
    if _in_child() or item.get_closest_marker("oomlab") is None:
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    setup = pytest.CallInfo.from_call(lambda: _skip_if_marked(item), when="setup")
    reports = [ihook.pytest_runtest_makereport(item=item, call=setup)]
    if setup.excinfo is None:
        call = pytest.CallInfo.from_call(lambda: _measure(item), when="call")
        reports.append(ihook.pytest_runtest_makereport(item=item, call=call))
    teardown = pytest.CallInfo.from_call(lambda: None, when="teardown")
    reports.append(ihook.pytest_runtest_makereport(item=item, call=teardown))
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _skip_if_marked(item):
    """`skip` and `skipif` marks still skip a test the plugin takes over."""
    try:
        from _pytest.skipping import evaluate_skip_marks
    except ImportError:  # pragma: no cover - older or newer pytest
        return
    skipped = evaluate_skip_marks(item)
    if skipped:
        pytest.skip(skipped.reason)


class _Settings:
    """What one marked test is measured with: the marker, then the options."""

    def __init__(self, item):
        marker = item.get_closest_marker("oomlab")
        kwargs = dict(marker.kwargs)
        if marker.args:
            kwargs.setdefault("rows", marker.args[0])
        config = item.config
        where = f"{item.nodeid}: @pytest.mark.oomlab"
        rows = kwargs.pop("rows", None)
        if (
            not isinstance(rows, (list, tuple))
            or len(set(rows)) < 2
            or not all(isinstance(r, int) and r > 0 for r in rows)
        ):
            raise pytest.UsageError(
                f"{where}: rows= must be a list of at least two distinct positive "
                f"integers (the per-row cost is the slope between them), got {rows!r}"
            )
        self.rows = sorted(set(rows))
        self.limit = kwargs.pop("max_bytes_per_row", None)
        if self.limit is not None and not (
            isinstance(self.limit, (int, float)) and self.limit > 0
        ):
            raise pytest.UsageError(
                f"{where}: max_bytes_per_row= must be a positive number, got {self.limit!r}"
            )
        self.baseline = config.getoption("oomlab_baseline")
        if self.baseline:
            self.baseline = os.path.abspath(
                os.path.join(str(config.invocation_params.dir), self.baseline)
            )
        self.update = config.getoption("oomlab_update")
        if self.update and not self.baseline:
            raise pytest.UsageError("--oomlab-update needs --oomlab-baseline FILE (where to bless)")
        # --oomlab-runs overrides every marker (a quick local run, a careful CI one).
        runs = config.getoption("oomlab_runs") or kwargs.get("runs")
        kwargs.pop("runs", None)
        self.runs = int(runs) if runs else (3 if self.baseline else 1)
        # The test's own figure first, then the session's.
        production = (
            kwargs.pop("production_rows", None)
            or config.getoption("oomlab_production_rows")
            or config.getini("oomlab_production_rows")
        )
        try:
            self.production_rows = int(production) if production else None
        except ValueError:
            raise pytest.UsageError(
                f"oomlab_production_rows = {production!r}: expected a whole number of rows"
            )
        self.stage_pattern = kwargs.pop("stage_pattern", None)
        if kwargs:
            raise pytest.UsageError(
                f"{where}: unknown argument(s) {', '.join(sorted(kwargs))}; "
                "expected rows, max_bytes_per_row, production_rows, runs, stage_pattern"
            )


def _oomlab_bin(config):
    """The binary of this wheel first, so the plugin and oomlab always match."""
    explicit = config.getoption("oomlab_bin") or os.environ.get("OOMLAB_BIN")
    if explicit:
        return explicit
    beside = os.path.join(sysconfig.get_path("scripts"), "oomlab")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("oomlab")
    if found:
        return found
    raise pytest.UsageError(
        "oomlab's pytest plugin: no `oomlab` binary beside this Python or on $PATH "
        "(pip install oomlab, or --oomlab-bin PATH)"
    )


def _python():
    """The child's interpreter as a name found on $PATH: a baseline entry is
    keyed by the command line, which must not name this machine's venv."""
    exe = sys.executable
    folder = os.path.dirname(exe)
    for name in ("python", "python3"):
        candidate = os.path.join(folder, name)
        if os.path.exists(candidate) and os.path.realpath(candidate) == os.path.realpath(exe):
            return name, folder
    return os.path.basename(exe), folder


def _workdir(item):
    """oomlab's reports for this test: kept, and named in a failure."""
    config = item.config
    base = config.getoption("oomlab_out")
    if base:
        base = os.path.join(str(config.invocation_params.dir), base)
    else:
        factory = getattr(config, "_tmp_path_factory", None)
        base = str(factory.getbasetemp() / "oomlab") if factory else tempfile.mkdtemp(
            prefix="oomlab-pytest-"
        )
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in item.nodeid)[-120:]
    path = os.path.join(base, safe)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def _measure(item):
    """One marked test: oomlab runs it at each size; judge what oomlab wrote."""
    settings = _Settings(item)
    config = item.config
    oomlab = _oomlab_bin(config)
    python, folder = _python()
    argv = [python, "-m", "oomlab_pytest.child", item.nodeid]
    work = _workdir(item)
    env = dict(os.environ)
    env["PATH"] = folder + os.pathsep + env.get("PATH", "")
    env["OOMLAB_PYTEST_ROOT"] = str(config.rootpath)
    if config.inipath is not None:
        env["OOMLAB_PYTEST_INIFILE"] = str(config.inipath)
    env.pop(CHILD_ENV, None)

    judging = settings.baseline and not settings.update
    if settings.update and not settings.production_rows:
        pytest.fail(
            f"{item.nodeid}: blessing needs the rows production loads, to price a change "
            "later: production_rows= on the marker, --oomlab-production-rows or "
            "oomlab_production_rows in the ini file",
            pytrace=False,
        )
    target = settings.baseline if settings.baseline else os.path.join(work, "measured.json")
    cmd = [oomlab, "gate", "--baseline", target, "--runs", str(settings.runs), "--quiet"]
    if judging:
        # The entry names its sizes and stage pattern; without a production
        # size here, the entry's prices the change.
        cmd += ["--json", os.path.join(work, "gate.json")]
        if settings.production_rows:
            cmd += ["--production-rows", str(settings.production_rows)]
    else:
        cmd += ["--update", "--rows", ",".join(str(r) for r in settings.rows)]
        # gate needs a production size to price a change; without one the
        # largest size stands in and no price is printed.
        cmd += ["--production-rows", str(settings.production_rows or settings.rows[-1])]
        if settings.stage_pattern:
            cmd += ["--stage-pattern", settings.stage_pattern]
    cmd += ["--"] + argv
    # GitHub's step summary gets the gate's table when judging a baseline,
    # not a scratch blessing per test.
    if not judging:
        env.pop("GITHUB_STEP_SUMMARY", None)
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    shown = " ".join(_quote(a) for a in cmd)
    if done.returncode not in (0, 1):
        pytest.fail(_child_failure(done, shown, work), pytrace=False)

    if judging:
        with open(os.path.join(work, "gate.json")) as f:
            result = json.load(f)
        stages = _now_from_gate(result)
        verdict = done.stdout.strip()
    else:
        stages = _blessed(target, argv)
        verdict = None
    production_rows = settings.production_rows
    sizes = ", ".join(f"{r:,}" for r in settings.rows)
    if judging and result.get("commands"):
        # The baseline's entry decides the sizes run and, by default, the price.
        judged = result["commands"][0]
        production_rows = production_rows or judged["production_rows"]
        sizes = ", ".join(f"{r:,}" for r in judged["rows"])

    over = [
        s for s in stages if settings.limit is not None and s["bytes_per_row"] > settings.limit
    ]
    peak = _costliest(stages)
    if peak is not None:
        config._oomlab_lines.append(
            f"{item.nodeid}: {_stage_line(peak, production_rows)}"
            + (f" (limit {settings.limit:,} B/row)" if settings.limit is not None else "")
        )
    problems = []
    if over:
        worst = _costliest(over)
        problems.append(
            f"oomlab: stage `{worst['name']}` costs {round(worst['bytes_per_row']):,} B/row, "
            f"over the limit of {settings.limit:,} B/row"
        )
        for s in sorted(over, key=lambda s: -s["bytes_per_row"]):
            problems.append("  " + _stage_line(s, production_rows))
    if judging and done.returncode == 1:
        problems.append(verdict)
    if problems:
        problems.append(
            f"measured at {sizes} rows, {settings.runs} run(s) each, by: {shown}\n"
            f"reports: {work}"
        )
        if production_rows is None:
            problems.append(
                "(set production_rows= on the marker or oomlab_production_rows in the ini "
                "file to price the per-row cost)"
            )
        pytest.fail("\n".join(problems), pytrace=False)


def _costliest(stages):
    """The stage with the highest per-row cost; of stages within 2% of it, the
    first: a stage that only holds what the one before left (a `done` marker
    after a merge) shows the same slope, and the merge is the one to name."""
    if not stages:
        return None
    top = max(s["bytes_per_row"] for s in stages)
    return next(s for s in stages if s["bytes_per_row"] >= top - abs(top) * 0.02)


def _blessed(path, argv):
    """The stages oomlab blessed for this command (slope fitted by oomlab)."""
    with open(path) as f:
        baseline = json.load(f)
    for entry in baseline.get("commands", []):
        if entry["argv"] == argv:
            return [
                {
                    "name": s["name"],
                    "bytes_per_row": s["bytes_per_row"],
                    "fixed_bytes": s["fixed_bytes"],
                    "peak_bytes": s["peak_bytes"],
                    "rows": entry["rows"][-1],
                }
                for s in entry["stages"]
            ]
    raise pytest.fail(f"oomlab wrote no entry for `{' '.join(argv)}` in {path}", pytrace=False)


def _now_from_gate(result):
    """The per-row costs measured now, from `gate --json` (stages with a slope)."""
    out = []
    for command in result.get("commands", []):
        for s in command["stages"]:
            slope = s.get("slope")
            peak = s.get("peak") or {}
            if slope is None:
                continue
            out.append(
                {
                    "name": s["stage"],
                    "bytes_per_row": slope["now_bytes_per_row"],
                    "fixed_bytes": None,
                    "peak_bytes": peak.get("now"),
                    "rows": command["rows"][-1],
                }
            )
    return out


def _stage_line(stage, production_rows):
    """`merge: 2,431 B/row (+ 61.0 MiB fixed); 20.2 GiB at 8,532,146 production rows`."""
    text = f"{stage['name']}: {round(stage['bytes_per_row']):,} B/row"
    if stage.get("fixed_bytes") is not None:
        text += f" + {_bytes(stage['fixed_bytes'])} fixed"
        if production_rows:
            price = stage["fixed_bytes"] + stage["bytes_per_row"] * production_rows
            text += f"; {_bytes(price)} at {production_rows:,} production rows"
    elif production_rows:
        text += f"; {_bytes(stage['bytes_per_row'] * production_rows)} of rows at {production_rows:,} production rows"
    if stage.get("peak_bytes"):
        text += f" (measured peak {_bytes(stage['peak_bytes'])} at {stage['rows']:,} rows)"
    return text


def _bytes(value):
    """Binary units, as oomlab prints them."""
    sign = "-" if value < 0 else ""
    value = abs(float(value))
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.2f} {unit}"
        value /= 1024


def _quote(arg):
    return arg if arg and all(c.isalnum() or c in "-_./:=,{}" for c in arg) else repr(arg)


def _child_failure(done, shown, work):
    """oomlab could not measure: the test failed in the child, or bad input."""
    what = {
        2: "oomlab refused the input",
        5: "the test was killed at a memory limit",
        6: "the test failed (or crashed) in the measured child",
    }.get(done.returncode, f"oomlab exited {done.returncode}")
    lines = [f"oomlab: {what}", f"  command: {shown}"]
    logs = sorted(glob.glob(os.path.join(work, "**", "stdout.log"), recursive=True), key=os.path.getmtime)
    if logs and done.returncode in (5, 6):
        with open(logs[-1], errors="replace") as f:
            tail = f.read().splitlines()[-40:]
        lines.append(f"  the child's output ({logs[-1]}):")
        lines += ["    " + line for line in tail]
    err = done.stderr.strip().splitlines()[-15:]
    if err:
        lines.append("  oomlab said:")
        lines += ["    " + line for line in err]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter):
    """Every marked test's costliest stage, passed or not: the figures are the point."""
    lines = getattr(terminalreporter.config, "_oomlab_lines", [])
    if lines:
        terminalreporter.section("oomlab: costliest stage per row")
        for line in lines:
            terminalreporter.write_line(line)
