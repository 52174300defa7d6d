"""NCSN++ against recorded outputs of the public SynDiff generator (icon-lab/SynDiff).

The fixture (tests/models/fixtures/syndiff_public_ncsnpp.safetensors, 260 kB) holds the state
dict of the public ``NCSNpp`` in a tiny configuration with seeded random weights, fixed inputs
and the public forward's output, recorded on CPU by make_syndiff_public_fixture.py (see its
docstring). Nothing here walks medxlate's layout to build an expectation: the public output is
the oracle, so an error in medxlate's layout, its weight map or its blocks shows as a mismatch.
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medxlate.models.nets.ncsnpp import NCSNpp, NCSNppConfig
from medxlate.models.syndiff.convert import import_reference

FIXTURE = Path(__file__).parent / "fixtures" / "syndiff_public_ncsnpp.safetensors"
# The public configuration the fixture was made with (make_syndiff_public_fixture.CONFIG).
CFG = NCSNppConfig(image_size=16, in_channels=2, out_channels=1, nf=8, ch_mult=(1, 2),
                   num_res_blocks=1, attn_resolutions=(8,), nz=8, z_emb_dim=16, n_mlp=1)


@pytest.fixture(scope="module")
def recorded():
    data = load_file(str(FIXTURE))
    state = {k[len("state."):]: v for k, v in data.items() if k.startswith("state.")}
    net = NCSNpp(CFG)
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    net.load_state_dict(import_reference(state, CFG, shapes), strict=True)
    return net.eval(), data


def test_fixture_is_not_trivial(recorded):
    _, data = recorded
    out = data["out"][:, 0]
    assert out.shape == (3, 16, 16) and float(out.std()) > 0.03
    assert float((out[0] - out[1]).abs().mean()) > 1e-3  # t and z change the output


@pytest.mark.parametrize("grad", [False, True])
def test_generator_equals_public_forward(recorded, grad):
    net, data = recorded
    with torch.set_grad_enabled(grad):
        out = net(data["x"], data["t"], data["z"])
    # the public net returns num_channels = 2 outputs; its sampler keeps channel 0
    torch.testing.assert_close(out.detach(), data["out"][:, :1], rtol=0, atol=2e-6)


def test_single_slice_inference_path_equals_public_forward(recorded):
    net, data = recorded
    with torch.no_grad():
        for i in range(3):
            out = net(data["x"][i:i + 1], data["t"][i:i + 1], data["z"][i:i + 1])
            torch.testing.assert_close(out, data["out"][i:i + 1, :1], rtol=0, atol=2e-6)
