"""Turn raw MR/CT studies into a training dataset (docs/dataset-format.md). Torch-free.

Public API: :func:`load_dataset` (read a dataset folder), :func:`body_mask`, and the
normalisation functions used by training, synthesis and evaluation.
"""

from medxlate.preprocess.dataset import Dataset, load_dataset
from medxlate.preprocess.mask import body_mask
from medxlate.intensity import (
    DEFAULT_NORMALISATION,
    denormalise,
    denormalise_ct,
    denormalise_mr,
    normalise,
    normalise_ct,
    normalise_mr,
)

__all__ = ["DEFAULT_NORMALISATION", "Dataset", "body_mask", "denormalise", "denormalise_ct",
           "denormalise_mr", "load_dataset", "normalise", "normalise_ct", "normalise_mr"]
