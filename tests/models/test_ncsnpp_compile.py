"""torch.compile traces SynDiff's NCSN++ in one graph (issue 16: the graph break of the
adaptive group norm's ``out=`` into a channels-last tensor is gone), and eager outputs and
those of the traced graph are identical.

Oracle: dynamo itself (``fullgraph=True`` raises at any graph break), and the eager network
(whose code path is unchanged).
"""

from __future__ import annotations

import torch

from medxlate.models.nets.ncsnpp import NCSNpp, NCSNppConfig


def test_ncsnpp_compiles_without_graph_breaks_and_same_outputs():
    import torch._dynamo as dynamo

    cfg = NCSNppConfig(image_size=16, nf=8, ch_mult=(1, 2), attn_resolutions=(8,),
                       num_res_blocks=1)
    torch.manual_seed(0)
    g = NCSNpp(cfg).eval()
    gen = torch.Generator().manual_seed(1)
    x, t = torch.randn(2, 2, 16, 16, generator=gen), torch.randint(0, 4, (2,), generator=gen)
    z = torch.randn(2, cfg.nz, generator=gen)
    dynamo.reset()
    with torch.inference_mode():
        eager = g(x, t, z)
        traced = torch.compile(g, backend="eager", fullgraph=True)(x, t, z)
    dynamo.reset()
    assert torch.equal(traced, eager)
