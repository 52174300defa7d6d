"""Import of icon-lab/SynDiff generator checkpoints (medxlate.models.syndiff.convert).

``reference_state_dict`` re-derives the published parameter names and shapes from the
reference's module structure (NCSNpp with progressive_input="residual", BigGAN AdaGN
blocks, AttnBlockpp with NIN layers, z_transform) independently of medxlate's layout().
"""

import pytest
import torch

from medxlate.errors import WeightsError
from medxlate.models.nets.ncsnpp import NCSNpp, NCSNppConfig
from medxlate.models.syndiff.convert import import_reference

SMALL = NCSNppConfig(image_size=32, nf=8, ch_mult=(1, 2, 2), attn_resolutions=(8,),
                     nz=10, z_emb_dim=16, n_mlp=2)


def reference_state_dict(nf, ch_mult, num_res_blocks, attn_res, image_size, channels=2,
                         nz=100, zdim=256, n_mlp=3, gen=None):
    """Names -> random tensors with the reference's shapes, walking its constructor."""
    shapes = {}
    modules = []                                     # (kind, params) in all_modules order

    def res(cin, cout, resample=False):
        p = {"GroupNorm_0.style.weight": (2 * cin, zdim), "GroupNorm_0.style.bias": (2 * cin,),
             "Conv_0.weight": (cout, cin, 3, 3), "Conv_0.bias": (cout,),
             "Dense_0.weight": (cout, 4 * nf), "Dense_0.bias": (cout,),
             "GroupNorm_1.style.weight": (2 * cout, zdim),
             "GroupNorm_1.style.bias": (2 * cout,),
             "Conv_1.weight": (cout, cout, 3, 3), "Conv_1.bias": (cout,)}
        if cin != cout or resample:
            p.update({"Conv_2.weight": (cout, cin, 1, 1), "Conv_2.bias": (cout,)})
        modules.append(p)

    def attn(c):
        p = {"GroupNorm_0.weight": (c,), "GroupNorm_0.bias": (c,)}
        for i in range(4):
            p.update({f"NIN_{i}.W": (c, c), f"NIN_{i}.b": (c,)})
        modules.append(p)

    modules.append({"weight": (4 * nf, nf), "bias": (4 * nf,)})
    modules.append({"weight": (4 * nf, 4 * nf), "bias": (4 * nf,)})
    modules.append({"weight": (nf, channels, 3, 3), "bias": (nf,)})
    hs, cin, pyr = [nf], nf, channels
    n = len(ch_mult)
    for lv in range(n):
        for _ in range(num_res_blocks):
            res(cin, nf * ch_mult[lv])
            cin = nf * ch_mult[lv]
            if image_size // 2 ** lv in attn_res:
                attn(cin)
            hs.append(cin)
        if lv != n - 1:
            res(cin, cin, resample=True)
            modules.append({"Conv2d_0.weight": (cin, pyr, 3, 3), "Conv2d_0.bias": (cin,)})
            pyr = cin
            hs.append(cin)
    res(cin, cin)
    attn(cin)
    res(cin, cin)
    for lv in reversed(range(n)):
        for _ in range(num_res_blocks + 1):
            res(cin + hs.pop(), nf * ch_mult[lv])
            cin = nf * ch_mult[lv]
        if image_size // 2 ** lv in attn_res:
            attn(cin)
        if lv != 0:
            res(cin, cin, resample=True)
    modules.append({"weight": (cin,), "bias": (cin,)})
    modules.append({"weight": (channels, cin, 3, 3), "bias": (channels,)})
    for i, params in enumerate(modules):
        for k, s in params.items():
            shapes[f"all_modules.{i}.{k}"] = s
    dims = [nz] + [zdim] * (n_mlp + 1)
    for j in range(n_mlp + 1):
        shapes[f"z_transform.{2 * j + 1}.weight"] = (dims[j + 1], dims[j])
        shapes[f"z_transform.{2 * j + 1}.bias"] = (dims[j + 1],)
    gen = gen or torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=gen) * 0.1 for k, s in shapes.items()}


def _ours(cfg):
    return {k: v.shape for k, v in NCSNpp(cfg).state_dict().items()}


def test_paper_layout_names_and_count_match_the_reference():
    ref = reference_state_dict(64, (1, 1, 2, 2, 4, 4), 2, (16,), 256,
                               gen=torch.Generator().manual_seed(0))
    assert sum(v.numel() for v in ref.values()) == 39_725_250
    assert max(int(k.split(".")[1]) for k in ref if k.startswith("all_modules")) == 55
    with torch.device("meta"):
        shapes = _ours(NCSNppConfig())
    mapped = import_reference({f"module.{k}": v for k, v in ref.items()}, NCSNppConfig(),
                              shapes)
    assert set(mapped) == set(shapes)
    assert torch.equal(mapped["stem.weight"], ref["all_modules.2.weight"])
    assert torch.equal(mapped["mid.attn.q.weight"], ref["all_modules.28.NIN_0.W"].t())
    assert torch.equal(mapped["out_conv.weight"], ref["all_modules.55.weight"][:1])


def test_import_round_trip_gives_the_same_parameters():
    ref = reference_state_dict(8, (1, 2, 2), 2, (8,), 32, nz=10, zdim=16, n_mlp=2)
    g = NCSNpp(SMALL)
    mapped = import_reference(ref, SMALL, _ours(SMALL))
    g.load_state_dict(mapped, strict=True)
    params = dict(g.named_parameters())
    assert torch.equal(params["time_embed.0.weight"], ref["all_modules.0.weight"])
    assert torch.equal(params["latent_mlp.net.4.bias"], ref["z_transform.5.bias"])
    assert torch.equal(params["down.0.pyramid.conv.weight"], ref["all_modules.6.Conv2d_0.weight"])
    # Every reference tensor is used: the parameter total equals the reference's minus the
    # second output channel (in_ch * 9 + 1 values).
    total_ref = sum(v.numel() for v in ref.values())
    assert sum(p.numel() for p in g.parameters()) == total_ref - (8 * 9 + 1)


def test_import_rejects_missing_unexpected_and_misshaped():
    ref = reference_state_dict(8, (1, 2, 2), 2, (8,), 32, nz=10, zdim=16, n_mlp=2)
    ours = _ours(SMALL)
    bad = dict(ref)
    bad.pop("all_modules.3.Conv_0.weight")
    with pytest.raises(WeightsError, match="1 missing"):
        import_reference(bad, SMALL, ours)
    with pytest.raises(WeightsError, match="1 unexpected"):
        import_reference({**ref, "all_modules.99.weight": torch.zeros(1)}, SMALL, ours)
    bad = {**ref, "all_modules.3.Conv_0.weight": torch.zeros(8, 8, 1, 1)}
    with pytest.raises(WeightsError, match="shape"):
        import_reference(bad, SMALL, ours)
    with pytest.raises(WeightsError, match="module."):
        import_reference({**ref, "module.x": torch.zeros(1)}, SMALL, ours)
    # A checkpoint of another architecture (paper vs small) is refused by key count.
    with pytest.raises(WeightsError, match="missing|unexpected"):
        import_reference(ref, NCSNppConfig(image_size=32, nf=8, ch_mult=(1, 2),
                                           attn_resolutions=(8,), nz=10, z_emb_dim=16,
                                           n_mlp=2), _ours(NCSNppConfig(
                                               image_size=32, nf=8, ch_mult=(1, 2),
                                               attn_resolutions=(8,), nz=10, z_emb_dim=16,
                                               n_mlp=2)))
