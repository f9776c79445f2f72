"""oomlab's launcher of a traced run (bundled in the oomlab binary, src/lines/).

Runs a Python program under memray as `memray run` does, with the memory
snapshot taken every millisecond instead of every ten: oomlab cuts the
capture at the program's stage markers by time, and a stage of a few
milliseconds (a `copy()`) must have snapshots of its own.

It also writes, to STAMPS, each line the program writes to sys.stdout or
sys.stderr with the time it was written (`ms<TAB>line`), on the clock memray
stamps its snapshots with (the system clock, ms since the epoch). oomlab
reads the lines from a pipe, late by however long the machine takes to
schedule it; a marker stamped when it is read would put the allocations just
after it before it.

Usage: python oomlab_memray_launch.py CAPTURE STAMPS (SCRIPT.py | -m MODULE | -c CODE) ARGS...
"""

import os
import runpy
import sys
import time

import memray


class Stamped:
    """A text stream that notes when each of its lines was written."""

    def __init__(self, stream, stamps):
        self._stream = stream
        self._stamps = stamps
        self._line = ""

    def write(self, text):
        if isinstance(text, str) and "\n" in text:
            ms = time.time_ns() // 1_000_000
            *done, self._line = (self._line + text).split("\n")
            self._stamps.write("".join("%d\t%s\n" % (ms, line) for line in done))
            self._stamps.flush()
        elif isinstance(text, str):
            self._line += text
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main():
    capture, stamps, target, rest = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    destination = memray.FileDestination(capture, overwrite=True)
    out = open(stamps, "w", encoding="utf-8", errors="backslashreplace")
    sys.stdout = Stamped(sys.stdout, out)
    sys.stderr = Stamped(sys.stderr, out)
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
