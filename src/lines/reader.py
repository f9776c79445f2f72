"""oomlab's reader of a memray capture (bundled in the oomlab binary, src/lines/).

Reads the capture with memray's own API and prints one JSON document on
stdout: the memory snapshots' times, the heap high-water mark of each
snapshot interval, and, per allocation site in the user's own code, the
bytes it held over which snapshot intervals. oomlab maps those intervals to
its stages; it never parses memray's binary format itself.

A site is the innermost frame of an allocation's Python stack that is the
user's code: not the standard library, not site-packages, not memray, not a
frozen or generated module. Allocations with no such frame (the interpreter
starting, memray's own start) are one site with `user: false`.

Usage: python reader.py CAPTURE
"""

import json
import linecache
import os
import sys
import sysconfig

import memray


def outside_prefixes():
    """Directories whose files are not the user's code."""
    paths = sysconfig.get_paths()
    found = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = paths.get(key)
        if p:
            found.add(os.path.realpath(p))
    found.add(os.path.realpath(os.path.dirname(memray.__file__)))
    return tuple(sorted(p.rstrip(os.sep) + os.sep for p in found))


OUTSIDE = outside_prefixes()
_user_cache = {}


def is_user(filename):
    hit = _user_cache.get(filename)
    if hit is None:
        if os.path.basename(filename).startswith("oomlab_memray_"):
            hit = False  # the launcher and this reader
        elif filename == "<string>":
            hit = True  # the program of `python -c`
        elif not filename or filename.startswith("<"):
            hit = False
        elif "site-packages" in filename or "dist-packages" in filename:
            hit = False
        else:
            hit = not os.path.realpath(filename).startswith(OUTSIDE)
        _user_cache[filename] = hit
    return hit


def site_of(stack):
    """(file, line, function, user) of an allocation's stack, innermost first."""
    for function, filename, lineno in stack:
        if is_user(filename):
            return (filename, lineno, function, True)
    return ("", 0, "", False)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: reader.py CAPTURE")
    # Every snapshot (the launcher takes one a millisecond), not memray's
    # default 10,000 spread over the run.
    reader = memray.FileReader(argv[1], max_memory_records=100_000_000)
    snapshots = [[s.time, s.rss, s.heap] for s in reader.get_memory_snapshots()]
    records, hwm = reader.get_temporal_high_water_mark_allocation_records(merge_threads=True)
    hwm = list(hwm)
    sites = {}
    for record in records:
        site = site_of(record.stack_trace())
        entry = sites.get(site)
        if entry is None:
            entry = sites[site] = {}
        for interval in record.intervals:
            key = (interval.allocated_before_snapshot, interval.deallocated_before_snapshot)
            if interval.n_bytes:
                entry[key] = entry.get(key, 0) + interval.n_bytes
    out_sites = []
    for (filename, lineno, function, user), intervals in sites.items():
        code = linecache.getline(filename, lineno).strip() if user else ""
        out_sites.append(
            {
                "file": filename,
                "line": lineno,
                "function": function,
                "user": user,
                "code": code,
                "intervals": [[a, d, n] for (a, d), n in intervals.items()],
            }
        )
    meta = reader.metadata
    if len(hwm) < len(snapshots):
        # memray stops aggregating at the last allocation record: after it
        # the heap only stands, at each snapshot's own heap figure.
        hwm.extend(s[2] for s in snapshots[len(hwm):])
    if len(hwm) == len(snapshots) + 1:
        # The interval after the last snapshot ends with the run.
        snapshots.append([int(meta.end_time.timestamp() * 1000), 0, 0])
    json.dump(
        {
            "memray": getattr(memray, "__version__", ""),
            "python": sys.version.split()[0],
            "peak_memory": meta.peak_memory,
            "snapshots": snapshots,
            "hwm": hwm,
            "sites": out_sites,
        },
        sys.stdout,
        separators=(",", ":"),
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
