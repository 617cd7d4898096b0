"""Norse phenotypes (model world). May import torch and norse; never Lava, NIR targets or energy."""

from spikesmith.nn.snn import DT, SNN, NeuronParams, is_neuron

__all__ = ["DT", "SNN", "NeuronParams", "is_neuron"]
