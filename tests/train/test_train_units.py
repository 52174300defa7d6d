"""Engine parts with known answers: LR schedule, EMA, accumulation, sampling, augmentation,
2.5D stacking, config resolution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import make_dataset

from medxlate.errors import UsageError
from medxlate.models.registry import get_spec
from medxlate.preprocess.dataset import load_dataset
from medxlate.train.augment import augment_sample, jitter_mr
from medxlate.train.config import ENGINE_DEFAULTS, parse_set, resolve_config
from medxlate.train.context import StepContext
from medxlate.train.data import SliceData
from medxlate.train.ema import EMA
from medxlate.train.sampling import BatchPlan
from medxlate.train.schedule import lr_factor


def test_lr_schedule_values():
    assert [lr_factor(s, 10, "constant", warmup=4) for s in range(5)] == [0.25, 0.5, 0.75, 1, 1]
    # cosine after 2 warm-up steps over the remaining 9 intervals, floor 0.1
    assert lr_factor(2, 12, "cosine", warmup=2, floor=0.1) == pytest.approx(1.0)
    mid = lr_factor(2 + 9 / 2, 12, "cosine", warmup=2, floor=0.1)
    assert mid == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(11, 12, "cosine", warmup=2, floor=0.1) == pytest.approx(0.1)
    assert lr_factor(5, 12, "cosine", warmup=2) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 3 / 9)))


def test_ema_maths():
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(1.0)
        net.bias.fill_(0.0)
    ema = EMA({"n": net}, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(3.0)
    ema.update({"n": net})                      # 0.9 * 1 + 0.1 * 3 = 1.2
    with torch.no_grad():
        net.weight.fill_(5.0)
    ema.update({"n": net})                      # 0.9 * 1.2 + 0.1 * 5 = 1.58
    assert torch.allclose(ema.nets["n"].weight, torch.full((1, 2), 1.58))
    assert torch.equal(ema.nets["n"].bias, torch.zeros(1))
    assert not ema.nets["n"].weight.requires_grad
    # buffers are copied, not averaged
    bn = torch.nn.BatchNorm1d(2)
    ema_bn = EMA({"bn": bn}, decay=0.99)
    bn.running_mean.fill_(4.0)
    ema_bn.update({"bn": bn})
    assert torch.equal(ema_bn.nets["bn"].running_mean, torch.full((2,), 4.0))
    # warm-up: update n uses min(decay, (1 + n) / (10 + n))
    warm = EMA({"n": torch.nn.Linear(1, 1, bias=False)}, decay=0.999, warmup=True)
    assert [warm.decay_at(n) for n in (0, 10, 10000)] == [0.1, 11 / 20, 0.999]
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        warm.nets["n"].weight.fill_(0.0)
        lin.weight.fill_(10.0)
    warm.update({"n": lin}, n=0)                 # 0.1 * 0 + 0.9 * 10
    assert warm.nets["n"].weight.item() == pytest.approx(9.0)


def _sgd_step(batches, accumulate):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    ctx = StepContext({"net": opt}, torch.device("cpu"), torch.Generator(), accumulate, None)
    for micro, (x, y) in enumerate(batches):
        ctx.micro_index = micro
        ctx.backward(((net(x) - y) ** 2).mean())
        ctx.step("net")
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def test_gradient_accumulation_equals_full_batch():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)
    full = _sgd_step([(x, y)], accumulate=1)
    halves = _sgd_step([(x[:4], y[:4]), (x[4:], y[4:])], accumulate=2)
    assert torch.allclose(full, halves, atol=1e-6)
    # and it really moved the weights
    torch.manual_seed(0)
    init = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    start = torch.cat([p.detach().reshape(-1) for p in init.parameters()])
    assert (full - start).abs().max() > 1e-3


def test_step_clips_gradient_norm():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=1.0)
    ctx = StepContext({"p": opt}, torch.device("cpu"), torch.Generator(), 1, grad_clip=1.0)
    ctx.backward((p * torch.tensor([3.0, 4.0])).sum())      # gradient (3, 4), norm 5
    ctx.step("p")
    assert ctx.grad_norms["p"] == pytest.approx(5.0)
    assert torch.allclose(p.detach(), torch.tensor([-0.6, -0.8]))


def test_batch_plan_ranks_are_disjoint_and_resumable():
    plans = [BatchPlan(10, 10, True, 2, seed=7, rank=r, world_size=2) for r in range(2)]
    assert plans[0].batches_per_epoch == 3          # ceil(ceil(10 / 2) / 2)
    epoch0 = [k for p in plans for i in range(3) for k in p.batch(i)]
    firsts = [k[0] for k in epoch0]
    assert len(epoch0) == 12 and set(firsts) == set(range(10))   # padded by wrapping
    assert not {k[0] for k in plans[0].batch(0)} & {k[0] for k in plans[1].batch(0)}
    fresh = BatchPlan(10, 10, True, 2, seed=7, rank=1, world_size=2)
    assert fresh.batch(4) == plans[1].batch(4)      # a pure function of the index
    assert plans[0].batch(3) != plans[0].batch(0)   # a new epoch is a new permutation
    unpaired = BatchPlan(10, 4, False, 5, seed=7)
    keys = unpaired.batch(0)
    assert all(0 <= k[1] < 4 for k in keys) and len({k[2] for k in keys}) == 5  # own seeds


def test_augment_is_seeded_and_keeps_pairs_aligned():
    mr = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6) / 48 - 0.5
    sample = {"mr": mr, "ct": mr.copy(), "mask": (mr > 0).astype(np.float32)}
    opts = {**ENGINE_DEFAULTS["augment"], "flip_lr": 1.0, "affine": 1.0}
    a = augment_sample(sample, np.random.default_rng(3), opts, mr_is_source=True)
    b = augment_sample(sample, np.random.default_rng(3), opts, mr_is_source=True)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert np.array_equal(a["mr"], a["ct"])                          # same transform
    assert set(np.unique(a["mask"])) <= {0.0, 1.0}                   # nearest for masks
    flip_only = augment_sample(sample, np.random.default_rng(0),
                               {**ENGINE_DEFAULTS["augment"], "flip_lr": 1.0},
                               mr_is_source=True)
    assert np.array_equal(flip_only["mr"], mr[:, ::-1, :])           # H is left-right


def test_mr_jitter_only_on_a_source():
    mr = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 4, 4)
    opts = {**ENGINE_DEFAULTS["augment"], "mr_jitter": 1.0}
    src = augment_sample({"mr": mr, "ct": mr}, np.random.default_rng(5), opts, True)
    tgt = augment_sample({"mr": mr, "ct": mr}, np.random.default_rng(5), opts, False)
    assert not np.allclose(src["mr"], mr) and np.array_equal(tgt["mr"], mr)
    assert np.allclose(jitter_mr(mr, 1.0, 0.0, 1.0), mr, atol=1e-6)
    assert jitter_mr(np.array([0.0]), 1.0, 0.0, 2.0)[0] == pytest.approx(-0.5)   # 0.5**2


def test_2p5d_stack_clamps_at_the_ends(tmp_path):
    ds = load_dataset(make_dataset(tmp_path / "ds", splits=("train",), n_slices=4))
    cfg = {**ENGINE_DEFAULTS, "context": 1}
    data = SliceData(ds, "train", cfg, augment=False)
    shard = ds.shard("sub-000")
    first = data[(0, 0, 0)]
    n0 = data.mr_centres[0][1]
    expect = np.stack([shard["mr"][max(n0 - 1, 0)], shard["mr"][n0], shard["mr"][n0 + 1]])
    assert first["mr"].shape == (3, 16, 16) and first["mask"].shape == (1, 16, 16)
    assert np.array_equal(first["mr"].numpy(), expect.astype(np.float32))
    last = data.stack(("sub-000", 3), "ct")
    assert np.array_equal(last[2], np.asarray(shard["ct"][3], np.float32))


def test_config_resolution_order(tmp_path):
    spec = get_spec("ddpm")
    cfg = resolve_config(spec, "paper", parse_set(["lr=3e-5", "augment.flip_lr=0.5"]))
    assert cfg["model_channels"] == 128 and cfg["lr"] == 3e-5
    with pytest.raises(UsageError, match="unknown config key 'x'"):  # issue 10: no silent keys
        resolve_config(spec, "paper", parse_set(["x=abc"]))
    assert cfg["augment"]["flip_lr"] == 0.5 and cfg["augment"]["affine"] == 0.0
    path = tmp_path / "c.json"
    path.write_text('{"base": "paper", "batch_size": 2}')
    cfg = resolve_config(spec, str(path))
    assert cfg["batch_size"] == 2 and cfg["model_channels"] == 128
    with pytest.raises(UsageError, match="neither"):
        resolve_config(spec, "nope")
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_set(["novalue"])
    with pytest.raises(UsageError, match="augment"):
        resolve_config(spec, "demo", {"augment": {"flipp": 1}})


def test_autocast_context():
    lin = torch.nn.Linear(4, 4)
    on = StepContext({}, torch.device("cpu"), torch.Generator(), amp_dtype=torch.bfloat16)
    off = StepContext({}, torch.device("cpu"), torch.Generator())
    with on.autocast():
        assert lin(torch.ones(1, 4)).dtype == torch.bfloat16
    with off.autocast():
        assert lin(torch.ones(1, 4)).dtype == torch.float32


def test_unpaired_samples_draw_mr_and_ct_independently(tmp_path):
    ds = load_dataset(make_dataset(tmp_path / "ds", splits=("train", "train"), n_slices=4))
    cfg = {**ENGINE_DEFAULTS, "pairing": "unpaired"}
    data = SliceData(ds, "train", cfg, augment=False)
    assert len(data.mr_centres) == len(data.ct_centres) == 8
    i_mr = 0                                                  # sub-000
    i_ct = next(i for i, c in enumerate(data.ct_centres) if c[0] == "sub-001")
    sample = data[(i_mr, i_ct, 0)]
    mr_c, ct_c = data.mr_centres[i_mr], data.ct_centres[i_ct]
    assert np.array_equal(sample["mr"][0].numpy(),
                          np.asarray(ds.shard(mr_c[0])["mr"][mr_c[1]], np.float32))
    assert np.array_equal(sample["ct"][0].numpy(),
                          np.asarray(ds.shard(ct_c[0])["ct"][ct_c[1]], np.float32))
    # the mask belongs to the source (MR) slice
    assert np.array_equal(sample["mask"][0].numpy(),
                          np.asarray(ds.shard(mr_c[0])["mask"][mr_c[1]], np.float32))


def test_validation_metrics_in_hu():
    from medxlate.train.validate import ct_to_hu, slice_metrics
    window = {"kind": "window", "low": -1024.0, "high": 3000.0}
    hu = ct_to_hu(torch.tensor([-1.0, 0.0, 1.0, 1.5]), window)
    assert hu.tolist() == [-1024.0, 988.0, 3000.0, 3000.0]
    pred = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[10.0, -30.0], [500.0, 0.0]]]])
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 1.0]]]])
    m = slice_metrics(pred, target, mask, peak=4024.0)
    assert m["mae"] == pytest.approx(40 / 3) and m["me"] == pytest.approx(20 / 3)
    assert m["psnr"] == pytest.approx(10 * math.log10(4024.0 ** 2 / (1000 / 3)))
