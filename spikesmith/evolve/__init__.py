"""Find the network: genomes, training-free fitness, and one evolution driver with its problems.

May import ``spikesmith.nn`` (phenotypes) and ``spikesmith.train``; never targets/ or energy/.
The driver is :mod:`spikesmith.evolve.driver`; its problems are the conv-SNN search
(:mod:`spikesmith.evolve.conv_search`), MSE-NAS (:mod:`spikesmith.evolve.nas`) and GEE with
spatio-temporal evolution (:mod:`spikesmith.evolve.gee`).
"""

from spikesmith.evolve.driver import EvolveConfig, evolve
from spikesmith.evolve.fitness import Fitness, network_fitness, spike_rdm
from spikesmith.evolve.genome import CONV_SPACE, Gene, SearchSpace, build_conv_snn

__all__ = [
    "CONV_SPACE", "EvolveConfig", "Fitness", "Gene", "SearchSpace", "build_conv_snn", "evolve",
    "network_fitness", "spike_rdm",
]
