"""Fixtures for synthesize tests: a tiny random pix2pix checkpoint and MR phantoms.

Geometry does not need a trained model; value tests swap in an identity generator.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from medxlate.models.registry import get_spec
from medxlate.intensity import DEFAULT_NORMALISATION
from medxlate.weights import CheckpointMeta, save_checkpoint

TRAIN_SPACING = [1.5, 1.5, 2.0]


def tiny_config(name: str = "pix2pix", **over) -> dict:
    cfg = get_spec(name).config("demo")
    if name == "pix2pix":
        cfg.update(ngf=4, ndf=4, n_downs=5, slice_size=[32, 32])
    elif name == "cyclegan":
        cfg.update(ngf=4, ndf=4, n_blocks=1, slice_size=[32, 32])
    cfg.update(over)
    return cfg


def make_checkpoint(path: Path, name: str = "pix2pix", seed: int = 0, data=None,
                    **over) -> Path:
    """A randomly initialised checkpoint of ``name`` as the training engine writes it."""
    spec = get_spec(name)
    family = spec.load_entry()
    cfg = tiny_config(name, **over)
    torch.manual_seed(seed)
    nets = family.build(cfg)
    tensors = {f"{n}.{k}": v for n in family.inference_nets(cfg)
               for k, v in nets[n].state_dict().items()}
    meta = CheckpointMeta(model=name, config=cfg, normalisation=DEFAULT_NORMALISATION,
                          data=data if data is not None else
                          {"spacing_mm": TRAIN_SPACING, "slice_axis": 2})
    save_checkpoint(path, tensors, meta)
    return path


def phantom_mr(shape=(40, 36, 10), seed: int = 0) -> np.ndarray:
    """An MR-like body: an off-centre ellipsoid (values ~400) with a bright block in the
    left half (low array index along x = patient left in RAS) and some noise."""
    rng = np.random.default_rng(seed)
    x, y, _ = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    cx, cy = shape[0] * 0.45, shape[1] * 0.5
    body = ((x - cx) / (shape[0] * 0.35)) ** 2 + ((y - cy) / (shape[1] * 0.38)) ** 2 < 1.0
    a = np.where(body, 400.0, 0.0).astype(np.float32)
    a[int(shape[0] * 0.2):int(shape[0] * 0.35), int(shape[1] * 0.4):int(shape[1] * 0.6)] = 900.0
    a += np.where(body, rng.normal(0, 10, shape), 0).astype(np.float32)
    return a


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    img = nib.Nifti1Image(array.astype(np.float32), affine)
    img.header.set_sform(affine, code=1)
    img.header.set_qform(affine, code=1)
    nib.save(img, str(path))
    return path


@pytest.fixture(scope="session")
def p2p_weights(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("w") / "p2p.safetensors")


@pytest.fixture()
def identity_generator(monkeypatch):
    """Make pix2pix's translate return the centre source slice (an identity 'model').

    The pipeline then maps MR to HU through the two normalisations only, so positions and
    values of the output can be predicted exactly.
    """
    from medxlate.models.pix2pix.family import Pix2Pix

    def translate(self, nets, source, **kwargs):
        c = source.shape[1] // 2
        return source[:, c:c + 1].clone()

    monkeypatch.setattr(Pix2Pix, "translate", translate)
