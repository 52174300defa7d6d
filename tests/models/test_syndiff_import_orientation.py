"""Imported SynDiff generators see slices as the public loader showed them in training.

Oracle (icon-lab/SynDiff dataset.py and README, written out here): its data are arrays of
shape (#images, width, height) and the loader feeds ``np.transpose(data, (0, 2, 1))``, i.e.
each slice as (height, width). A NIfTI volume read as (x, y, z) and stacked axially is
(z, x, y), so the network saw rows = y, columns = x; medxlate's slices are (x, y).
"""

import json

import numpy as np
import torch
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.models.registry import get_spec
from medxlate.weights import load_checkpoint
from tests.cli.test_weights_cli import _demo_reference

runner = CliRunner()


def public_loader_view(stack_xyz: np.ndarray) -> np.ndarray:
    """SynDiff's LoadDataSet on a (N, width, height) stack, without padding and scaling."""
    return np.transpose(stack_xyz, (0, 2, 1))


def _imported(tmp_path):
    _, ref = _demo_reference(gen_seed=4)
    pth = tmp_path / "gen_diffusive_1_10.pth"
    torch.save(ref, pth)
    out = tmp_path / "syndiff.safetensors"
    res = runner.invoke(app, ["weights", "import", str(pth), "--from", "syndiff", "--out",
                              str(out), "--config", "demo", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["slice_transpose"] is True
    tensors, meta = load_checkpoint(out)
    family = get_spec("syndiff").load_entry()
    nets = family.build(meta.config)
    nets["G_mr2ct"].load_state_dict({k.split(".", 1)[1]: v for k, v in tensors.items()})
    return family, {k: v.eval() for k, v in nets.items()}, meta.config


def test_imported_generator_sees_the_public_loader_view(tmp_path):
    family, nets, cfg = _imported(tmp_path)
    assert cfg["slice_transpose"] is True
    # an asymmetric "axial slice" in medxlate order (x, y): a bar along x near low y
    vol = np.full((64, 64, 1), -1.0, np.float32)
    vol[5:60, 8:14, :] = 0.8
    vol[40:44, 20:50, :] = 0.2
    source = torch.from_numpy(np.moveaxis(vol, 2, 0)[:, None].copy())  # (z, 1, x, y)
    seen = []
    g = nets["G_mr2ct"]
    forward = g.forward

    def spy(x, t, z):
        seen.append(x[:, 1].clone())       # the condition channel
        return forward(x, t, z)

    g.forward = spy
    out = family.translate(nets, source, config=cfg, generator=torch.Generator().manual_seed(0))
    expected = public_loader_view(np.moveaxis(vol, 2, 0))             # (z, y, x)
    assert len(seen) == 4
    for cond in seen:
        assert np.array_equal(cond.numpy(), expected)
    assert out.shape == source.shape
    # the result comes back in medxlate's (x, y) order: the same as running the generator on
    # the transposed slice by hand and transposing its output
    g.forward = forward
    plain = {**cfg, "slice_transpose": False}
    by_hand = family.translate(nets, source.transpose(-1, -2).contiguous(), config=plain,
                               generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, by_hand.transpose(-1, -2))


def test_medxlate_trained_weights_are_not_transposed():
    cfg = get_spec("syndiff").config("demo")
    assert not cfg.get("slice_transpose")
