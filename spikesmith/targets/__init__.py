"""Targets (deployment world): the Norse reference (``reference``), Lava (``lava``), the fixed-point
engine (``loihi``), the ANN twin (``onnx``), and verification across them (``verify``).

Targets take a ``nir.NIRGraph`` (or the plans compile/ makes of it) and return a ``Trace``; they never
import evolve/, train/, nn/ or data/.
"""
