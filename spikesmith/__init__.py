"""spikesmith: evolve, train, compile and deploy spiking neural networks to Loihi-style hardware.

Stages (each a subpackage with one front door): data -> evolve -> nn -> train -> compile ->
targets -> energy. Importing spikesmith loads none of torch, Norse or Lava.
"""

__version__ = "0.1.0"
