"""The one training engine for every model family (imports torch).

``train(model, data, out, ...)`` reads a dataset folder, builds the family's networks and
runs the loop with optimisers, LR schedule, clipping, AMP, EMA, accumulation, checkpoints,
validation, logs and data parallelism under torchrun. See :mod:`medxlate.train.engine`.
"""

from medxlate.train.engine import TrainResult, train

__all__ = ["TrainResult", "train"]
