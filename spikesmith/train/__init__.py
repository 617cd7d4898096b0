"""Training (model world): surrogate-gradient BPTT of Norse phenotypes. Never imports targets/ or energy/."""

from spikesmith.train.trainer import TrainConfig, TrainResult, evaluate, fit, logits_of

__all__ = ["TrainConfig", "TrainResult", "evaluate", "fit", "logits_of"]
