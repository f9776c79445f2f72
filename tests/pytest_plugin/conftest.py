"""The plugin's own suite: each test writes a small pipeline test and runs pytest
on it in a subprocess (pytester), with oomlab's plugin loaded from the installed
wheel. `.ci/run` runs it in the wheel's virtual environment (docs/pytest.md)."""

pytest_plugins = ["pytester"]
