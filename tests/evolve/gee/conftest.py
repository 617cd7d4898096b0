"""Fixtures for the GEE tests."""

import pytest

from gee_data import synthetic_data
from spikesmith.evolve.gee.spatiotemporal import GeeData


@pytest.fixture
def tiny_data() -> GeeData:
    return synthetic_data()
