"""The one training engine for every model family.

``train(model, data, out, ...)`` reads a dataset folder, builds the family's networks and
runs the loop with optimisers, LR schedule, clipping, AMP, EMA, accumulation, checkpoints,
validation, logs and data parallelism under torchrun. See :mod:`medxlate.train.engine`.

``train`` and ``TrainResult`` import torch when first used, so that torch-free helpers of
this package (:mod:`medxlate.train.curves`, :mod:`medxlate.train.budget`) stay light.
"""

from __future__ import annotations

__all__ = ["TrainResult", "train"]


def __getattr__(name: str):
    if name in __all__:
        from medxlate.train import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'medxlate.train' has no attribute {name!r}")
