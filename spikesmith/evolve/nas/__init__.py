"""MSE-NAS: multi-scale architecture search with a training-free RDM fitness (paper B; spec section 3).

May import ``spikesmith.nn``, ``spikesmith.train``, ``spikesmith.data`` and ``spikesmith.compile`` (the
NIR export of trained networks); never the targets: ``train_best`` deploys through a ``simulate``
function it is given (``spikesmith.api.train_nas_best`` passes ``spikesmith.api.simulate``).
"""

from spikesmith.evolve.nas.motifs import LIBRARY, Motif, MotifEdge, extend_library
from spikesmith.evolve.nas.network import Wiring, build_nas_net, wire
from spikesmith.evolve.nas.problem import EvalContext, evaluate_genome
from spikesmith.evolve.nas.run import MseNas, NasCandidate, NasOptions, NasResult, run_nas, train_best
from spikesmith.evolve.nas.space import Architecture, CellSpec, NasSpace

__all__ = [
    "LIBRARY", "Architecture", "CellSpec", "EvalContext", "Motif", "MotifEdge", "MseNas", "NasCandidate", "NasOptions",
    "NasResult", "NasSpace", "Wiring", "build_nas_net", "evaluate_genome", "extend_library", "run_nas",
    "train_best", "wire",
]
