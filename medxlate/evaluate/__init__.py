"""Evaluate synthetic images: SynthRAD-exact metrics in a mask, cohort reports, plots, gates.

Torch is imported only when SSIM/MS-SSIM are computed.

Example:
    >>> from medxlate.evaluate import MetricConfig, image_metrics
    >>> import numpy as np
    >>> ref = np.zeros((9, 9, 9), np.float32); mask = np.ones(ref.shape, bool)
    >>> metrics, _ = image_metrics(ref + 5, ref, mask, MetricConfig(device="cpu"))
    >>> metrics["mae"], round(metrics["ssim"], 4)
    (5.0, 1.0)
"""

from medxlate.evaluate.metrics import MetricConfig, image_metrics, point_metrics
from medxlate.evaluate.pairs import Case, find_cases
from medxlate.evaluate.run import Settings, evaluate_case, evaluate_cases

__all__ = ["Case", "MetricConfig", "Settings", "evaluate_case", "evaluate_cases", "find_cases",
           "image_metrics", "point_metrics"]
