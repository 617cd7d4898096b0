"""Networks (model world): the one place that builds torch networks. May import torch and norse;
never targets/, energy/, evolve/ or train/.

Every network is a :class:`Network` (a DAG of layers over time-first tensors with one time loop),
built by a registered family from its spec (:mod:`spikesmith.nn.registry`).
"""

from spikesmith.nn.network import INPUT, REFERENCE, Network, Schedule, auto_schedule
from spikesmith.nn.neurons import DT, NeuronParams, Neurons, is_neuron
from spikesmith.nn.registry import (Family, build, family_of, get_family, load_model, registered_families, save_model,
                                   spec_to_dict)

__all__ = ["DT", "INPUT", "REFERENCE", "Family", "Network", "NeuronParams", "Neurons", "Schedule", "auto_schedule",
           "build", "family_of",
           "get_family", "is_neuron", "load_model", "registered_families", "save_model", "spec_to_dict"]
