"""GEE genetic weight encoding and spatio-temporal evolution on the driver (paper A; spec sections 1-2).

May import ``spikesmith.nn``, ``spikesmith.train``, ``spikesmith.data``; never targets/ or energy/.
"""

from spikesmith.nn.families.gee import ARCH_NAMES, GeeSpec, build_network
from spikesmith.nn.gee import GeneConv2d, GeneInteraction, GeneLinear, generate_weight
from spikesmith.evolve.gee.report import ParamReport, compression_table, parameter_report
from spikesmith.evolve.gee.run import gee_params_table, run_gee_evolution
from spikesmith.evolve.gee.schedules import Constant, CosineDecay, LinearDecay
from spikesmith.evolve.gee.spatiotemporal import GeeData, GeeResult, GeeSte, SteOptions

__all__ = [
    "ARCH_NAMES", "Constant", "CosineDecay", "GeeData", "GeeSpec", "GeeResult", "GeneConv2d", "GeneInteraction",
    "GeeSte", "GeneLinear", "LinearDecay", "ParamReport", "SteOptions", "build_network", "compression_table",
    "gee_params_table", "generate_weight", "parameter_report", "run_gee_evolution",
]
