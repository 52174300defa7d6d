"""R1 on SynDiff's lazy steps: applied (non-zero, backpropagated into D) with the reference
scaling r1_gamma / 2 * mean_b ||grad_x D(x_t, t, x_{t+1})||^2 and no lazy_reg factor (the
public SynDiff/DDGAN code: `if global_step % lazy_reg == 0: (r1_gamma / 2 * penalty)
.backward()`), and absent on the other steps.

Oracle: the same seeded draws of (t, x_t, x_{t+1}) replayed here, D's input gradient taken
with torch.autograd directly, and the squared norm summed by hand.
"""

import pytest
import torch

from medxlate.models.registry import get_spec
from medxlate.models.syndiff.family import Chain, schedule
from medxlate.train.config import resolve_config
from medxlate.train.context import StepContext
from tests.models.test_syndiff_family import TINY


def _setup(r1_gamma):
    spec = get_spec("syndiff")
    family = spec.load_entry()
    cfg = resolve_config(spec, "demo", {**TINY, "r1_gamma": r1_gamma, "lazy_reg": 10})
    torch.manual_seed(0)
    nets = family.build(cfg)
    return family, cfg, nets


def _d_grads(r1_gamma, step_index):
    family, cfg, nets = _setup(r1_gamma)
    ctx = StepContext(family.optimizers(nets, cfg), torch.device("cpu"),
                      torch.Generator().manual_seed(5))
    ctx.step_index = step_index
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(2, 1, 16, 16, generator=gen) * 2 - 1
    cond = torch.rand(2, 1, 16, 16, generator=gen) * 2 - 1
    chain = Chain(nets["G_mr2ct"], nets["D_ct"], schedule(cfg), ctx, cfg)
    logs = chain.d_step(x0, cond)
    grads = [p.grad.detach().clone() for p in nets["D_ct"].parameters()]
    return logs, grads, nets, cfg, x0


def _oracle(nets, cfg, x0, r1_gamma):
    """gamma/2 * mean ||dD/dx_t||^2 on the first draws of the step's generator."""
    gen = torch.Generator().manual_seed(5)
    sched = schedule(cfg)
    t = torch.randint(0, sched.n_steps, (x0.shape[0],), generator=gen)
    x_t, x_tp1 = sched.q_sample_pairs(x0, t, generator=gen)
    x_t = x_t.detach().requires_grad_(True)
    d = nets["D_ct"]
    out = d(x_t, t, x_tp1).view(-1)
    (g,) = torch.autograd.grad(out.sum(), x_t, create_graph=True)
    per_sample = (g ** 2).sum(dim=(1, 2, 3))
    penalty = r1_gamma / 2 * per_sample.mean()
    param_grads = torch.autograd.grad(penalty, list(d.parameters()), allow_unused=True)
    return float(penalty.detach()), [torch.zeros_like(p) if pg is None else pg
                            for p, pg in zip(d.parameters(), param_grads)]


@pytest.mark.parametrize("step_index", [10])
def test_r1_applied_on_lazy_steps_with_reference_scaling(step_index):
    logs1, grads1, _, cfg, x0 = _d_grads(1.0, step_index)
    logs2, *_ = _d_grads(2.0, step_index)
    logs0, grads0, _, _, _ = _d_grads(0.0, step_index)
    expected, r1_param_grads = _oracle(_setup(1.0)[2], cfg, x0, 1.0)
    assert logs1["r1"] > 0 and logs0["r1"] == 0.0
    assert logs1["r1"] == pytest.approx(expected, rel=1e-5)      # gamma / 2, no lazy_reg factor
    assert logs2["r1"] == pytest.approx(2 * expected, rel=1e-5)  # linear in gamma
    # ... and backpropagated: D's gradients differ from the gamma = 0 run by exactly dR1/dtheta
    for g1, g0, want in zip(grads1, grads0, r1_param_grads):
        torch.testing.assert_close(g1 - g0, want, rtol=1e-4, atol=1e-6)
    assert any(float(w.abs().max()) > 0 for w in r1_param_grads)


@pytest.mark.parametrize("step_index", [9])
def test_no_r1_between_lazy_steps(step_index):
    logs1, grads1, *_ = _d_grads(1.0, step_index)
    _, grads0, *_ = _d_grads(0.0, step_index)
    assert logs1["r1"] == 0.0
    for g1, g0 in zip(grads1, grads0):
        assert torch.equal(g1, g0)


def test_unpaired_step_applies_r1_to_both_chains_on_lazy_steps():
    spec = get_spec("syndiff-unpaired")
    family = spec.load_entry()
    cfg = resolve_config(spec, "demo", dict(TINY))
    assert cfg["pairing"] == "unpaired"
    torch.manual_seed(0)
    nets = family.build(cfg)
    ctx = StepContext(family.optimizers(nets, cfg), torch.device("cpu"),
                      torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    batch = {k: torch.rand(2, 1, 16, 16, generator=gen) * 2 - 1 for k in ("mr", "ct")}
    ctx.step_index = 20
    logs = family.training_step(nets, batch, ctx, cfg)
    assert logs["r1_mr"] > 0 and logs["r1_ct"] > 0
