"""The DDPM's discretised CT likelihood: one bin per HU of the dataset's window.

Oracle: CT is stored in whole HU. Windowed to [low, high] -> [-1, 1], the HU values k map to
x_k = 2 (k - low) / (high - low) - 1, so a bin [x_k - b, x_k + b] per value tiles the line
(no gap, no overlap) exactly when b = 1 / (high - low). Then the probabilities of all HU
values under any Gaussian sum to 1, and the bin mass of one value is the normal CDF over
[k - 1/2, k + 1/2] HU. The old 2/4095 (twice as wide) made bins overlap: the sum was ~2.
"""

import math

import pytest
import torch

from medxlate.diffusion.losses import discretized_gaussian_nll
from medxlate.models.registry import get_spec
from medxlate.train.context import StepContext

FAMILY = get_spec("ddpm").load_entry()


def _phi(z):
    """The standard normal CDF."""
    return 0.5 * (1 + math.erf(float(z) / math.sqrt(2)))


def _hu_grid_probabilities(low, high, mean_hu, sd_hu, bin_width):
    k = torch.arange(int(low), int(high) + 1, dtype=torch.float64)
    x = 2 * (k - low) / (high - low) - 1
    mean = torch.full_like(x, 2 * (mean_hu - low) / (high - low) - 1)
    log_sd = torch.full_like(x, math.log(2 * sd_hu / (high - low)))
    return k, torch.exp(-discretized_gaussian_nll(x, mean, log_sd, bin_width))


@pytest.mark.parametrize("low,high", [(-1024.0, 3000.0), (-1024.0, 3071.0)])
def test_bins_of_all_hu_values_sum_to_one(low, high):
    window = {"ct": {"kind": "window", "low": low, "high": high}}
    b = FAMILY.bin_width({"direction": "mri2ct", "nll_bin_width": None}, window)
    assert b == 1 / (high - low)
    for mean_hu, sd_hu in ((40.0, 3.0), (700.0, 0.4), (-1024.0, 8.0)):
        k, p = _hu_grid_probabilities(low, high, mean_hu, sd_hu, b)
        assert float(p.sum()) == pytest.approx(1.0, abs=1e-9)
        # one interior value: the normal mass over [k - 1/2, k + 1/2] HU
        i = int(mean_hu - low) + 1 if mean_hu > low else 5
        mass = _phi((k[i] + 0.5 - mean_hu) / sd_hu) - _phi((k[i] - 0.5 - mean_hu) / sd_hu)
        assert float(p[i]) == pytest.approx(mass, rel=1e-6, abs=1e-12)


def test_training_step_uses_the_dataset_window(monkeypatch):
    seen = {}
    from medxlate.diffusion.gaussian import GaussianDiffusion

    real = GaussianDiffusion.training_losses

    def spy(self, *args, **kwargs):
        seen["bin_width"] = kwargs["nll_bin_width"]
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GaussianDiffusion, "training_losses", spy)
    spec = get_spec("ddpm")
    cfg = {**spec.config("demo"), "slice_size": [16, 16], "model_channels": 8,
           "channel_mult": [1, 2], "attention_resolutions": [8], "head_channels": 8,
           "diffusion_steps": 20}
    nets = FAMILY.build(cfg)
    ctx = StepContext(FAMILY.optimizers(nets, cfg), torch.device("cpu"),
                      torch.Generator().manual_seed(0), 1, 1.0)
    ctx.normalisation = {"ct": {"kind": "window", "low": -1000.0, "high": 2000.0},
                         "mr": {"kind": "percentile", "low_pct": 0.5, "high_pct": 99.5}}
    batch = {"mr": torch.zeros(2, 1, 16, 16), "ct": torch.zeros(2, 1, 16, 16)}
    FAMILY.training_step(nets, batch, ctx, cfg)
    assert seen["bin_width"] == 1 / 3000
