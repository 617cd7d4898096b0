"""The built-in network families; each module registers one family (see :mod:`spikesmith.nn.registry`)."""
