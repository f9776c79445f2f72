"""oomlab's launcher of a traced run (bundled in the oomlab binary, src/lines/).

Runs a Python program under memray as `memray run` does, with the memory
snapshot taken every millisecond instead of every ten: oomlab cuts the
capture at the program's stage markers by time, and a stage of a few
milliseconds (a `copy()`) must have snapshots of its own.

Usage: python oomlab_memray_launch.py CAPTURE (SCRIPT.py | -m MODULE | -c CODE) ARGS...
"""

import os
import runpy
import sys

import memray


def main():
    capture, target, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    destination = memray.FileDestination(capture, overwrite=True)
    with memray.Tracker(destination=destination, memory_interval_ms=1):
        if target == "-m":
            sys.path[0] = os.getcwd()
            sys.argv = ["", *rest[1:]]
            runpy.run_module(rest[0], run_name="__main__", alter_sys=True)
        elif target == "-c":
            sys.path[0] = ""
            sys.argv = ["-c", *rest[1:]]
            exec(compile(rest[0], "<string>", "exec"), {"__name__": "__main__"})
        else:
            sys.path[0] = os.path.dirname(os.path.abspath(target))
            sys.argv = [target, *rest]
            runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()
