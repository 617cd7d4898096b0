"""Interop tests: the results rows they measure, written out when SPIKESMITH_INTEROP_RESULTS names a file
(benchmarks/interop_table.py sets it and renders docs/interop.md from the file)."""

from __future__ import annotations

import os

import pytest

RESULTS_ENV = "SPIKESMITH_INTEROP_RESULTS"


@pytest.fixture(scope="session")
def interop_results():
    rows: list[dict] = []
    yield rows
    path = os.environ.get(RESULTS_ENV)
    if path and rows:
        from spikesmith import io

        io.write_json(path, {"kind": "spikesmith.interop_results", "schema_version": 1,
                             "rows": sorted(rows, key=lambda r: (r["framework"], r["model"], r["mode"]))})
