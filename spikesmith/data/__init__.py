"""Datasets and input encodings: the embedded digits and mnist5k, tonic's neuromorphic datasets, time-first loaders.

Stage rules: imports numpy at module level and torch, scikit-learn, tonic, h5py, torchvision
only inside the functions that need them; imports nothing from other spikesmith stages except
``spikesmith.errors`` and ``spikesmith.io``.
"""

from spikesmith.data.batching import DatasetInfo, Loaders
from spikesmith.data.digits import DigitsSplit, load_digits_split
from spikesmith.data.encode import direct, events_to_frames, rate, to_events
from spikesmith.data.mnist5k import load_mnist5k_split
from spikesmith.data.registry import DATASETS, make_loaders

DATASET_NAMES = tuple(DATASETS)

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DatasetInfo",
    "DigitsSplit",
    "Loaders",
    "direct",
    "events_to_frames",
    "load_digits_split",
    "load_mnist5k_split",
    "make_loaders",
    "rate",
    "to_events",
]
