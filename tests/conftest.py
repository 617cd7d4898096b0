"""Shared fixtures. Graph factories live in factories.py (tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from factories import CORPUS


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"no NIR corpus at {CORPUS} (it lies beside the clone in ../shared)")
    return CORPUS
