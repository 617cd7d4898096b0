"""Find the network: genomes, training-free fitness and search.

May import ``spikesmith.nn`` (phenotypes) and ``spikesmith.train``; never targets/ or energy/.
GEE/STE lives in :mod:`spikesmith.evolve.gee`, MSE-NAS in :mod:`spikesmith.evolve.nas`.
"""

from spikesmith.evolve.fitness import Fitness, network_fitness, spike_rdm
from spikesmith.evolve.genome import CONV_SPACE, Gene, SearchSpace, build_conv_snn
from spikesmith.evolve.search import Candidate, SearchResult, search

__all__ = [
    "CONV_SPACE", "Candidate", "Fitness", "Gene", "SearchResult", "SearchSpace",
    "build_conv_snn", "network_fitness", "search", "spike_rdm",
]
