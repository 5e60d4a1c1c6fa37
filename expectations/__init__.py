"""One Great Expectations 1.x suite per staged table (`<table>.json`), as data.

A package so that the suites ship with the code: `pipelines/quality/gx_runner.py` finds them
with importlib.resources wherever the package was installed.
"""
