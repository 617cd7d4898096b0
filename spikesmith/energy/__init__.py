"""Energy stage: operation counts from a NIR graph and a Trace, energy profiles, reports.

May import: ``spikesmith.compile.graph``, ``spikesmith.targets`` (ops, trace, onnx),
``spikesmith.io``, ``spikesmith.errors``. Never ``evolve``, ``train`` or ``nn``: a
third-party NIR graph is counted exactly like one of ours.
"""

from spikesmith.energy.macs import OnnxCounts, count_onnx_macs
from spikesmith.energy.profiles import Profile, available_profiles, load_profile
from spikesmith.energy.report import Report, make_report, write_report
from spikesmith.energy.synops import LayerCounts, OpCounts, count_ops

__all__ = [
    "LayerCounts", "OnnxCounts", "OpCounts", "Profile", "Report", "available_profiles",
    "count_onnx_macs", "count_ops", "load_profile", "make_report", "write_report",
]
