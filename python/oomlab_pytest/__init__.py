"""oomlab's pytest plugin: a test that says what a row may cost.

``@pytest.mark.oomlab(rows=[50_000, 100_000, 200_000], max_bytes_per_row=2000)``
on a test that takes its size from the ``oomlab_rows`` fixture runs the test in
a child pytest at each size, measured by the ``oomlab`` binary of the same
wheel (``oomlab gate``: stages from the child's log lines, exact per-stage
peaks from the kernel, the per-row slope fitted over the sizes). The pytest
process itself never runs a marked test, so its own imports and fixtures do
not count. See docs/pytest.md.
"""

__all__ = ["plugin"]
