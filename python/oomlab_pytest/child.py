"""The measured child: ``python -m oomlab_pytest.child NODEID``.

oomlab runs this command at each size (``$OOMLAB_ROWS``). It changes to the
parent session's root directory (``$OOMLAB_PYTEST_ROOT``) and runs one test
there with pytest, so the command line stays the same on every machine (a
baseline entry is keyed by it) while oomlab's own files land elsewhere.

Output is not captured (``-s``) and log records at INFO and above are printed
as ``LEVEL message`` lines, so oomlab's stage pattern sees the test's own
marker lines (``log.info("[stage] merge")`` or ``print("INFO [stage] merge")``).
"""

import os
import sys


def main(argv):
    """Runs the node ids in ``argv`` as the parent's session would, exits with pytest's code."""
    import pytest

    root = os.environ.get("OOMLAB_PYTEST_ROOT")
    if root:
        os.chdir(root)
        # As `python -m pytest` run from the root: its modules are importable.
        sys.path[0] = os.getcwd()
    os.environ["OOMLAB_PYTEST_CHILD"] = "1"
    args = [
        "-q",
        "-s",
        "-p",
        "no:cacheprovider",
        "--rootdir=.",
        "-o",
        "log_cli=true",
        "--log-cli-level=INFO",
        "--log-cli-format=%(levelname)s %(message)s",
    ]
    inifile = os.environ.get("OOMLAB_PYTEST_INIFILE")
    if inifile:
        args += ["-c", inifile]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        # Without entry points, the marker and fixture must be loaded by name.
        args += ["-p", "oomlab_pytest.plugin"]
    return int(pytest.main(args + list(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
