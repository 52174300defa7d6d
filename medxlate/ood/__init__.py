"""Out-of-distribution guard: what a model was trained on, and how far an input lies from it.

- :mod:`medxlate.ood.summary`: the compact, torch-free description of one input volume
  (modality evidence, body size, grid, quantiles of its normalised intensities in the body).
- :mod:`medxlate.ood.record`: a training record (``data["inputs"]`` of a checkpoint) built
  from the summaries of the training inputs, and written into an existing weights file
  without touching its tensors.
- :mod:`medxlate.ood.check`: the findings for one input against a record (docs/input-guard.md).
"""
