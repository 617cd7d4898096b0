"""Graph transformations (deployment world): torch -> NIR export, validation, BN folding, unit
conversion, the backend-neutral deployment plan, Loihi fixed-point quantisation, resource estimates.

``export`` and ``passes`` may import torch and Norse (they read trained models); everything else
here works on ``nir.NIRGraph`` and numpy only and never imports evolve/, train/, nn/ or data/.
"""

from spikesmith.compile.graph import FlatGraph, flatten
from spikesmith.compile.plan import Plan, build_plan
from spikesmith.compile.quantise import QuantConfig, QuantisedPlan, quantise
from spikesmith.compile.validate import validate

__all__ = ["FlatGraph", "Plan", "QuantConfig", "QuantisedPlan", "build_plan", "flatten", "quantise", "validate"]
