"""Issue 16: pinned host memory and the channels_last policy (synth.transfer, synth.speed).

The decisions are checked without CUDA (a torch.device("cuda") object needs no GPU); the
transfer itself on CUDA where there is one. Oracles: the rules as the issue states them
(pin only for CUDA; NHWC only for convolutional networks on CUDA under bf16/fp16), hand-
built networks whose parameter split is known, and the input values themselves.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from medxlate.synth.transfer import (
    channels_last_nets,
    conv_dominated,
    pinned,
    to_device,
    use_channels_last,
)

CUDA = torch.device("cuda", 0)
BF16 = SimpleNamespace(dtype=torch.bfloat16)
FP16 = SimpleNamespace(dtype=torch.float16)
FP32 = SimpleNamespace(dtype=None)


def test_only_cuda_batches_are_pinned():
    assert pinned(CUDA) and pinned(torch.device("cuda")) and pinned("cuda:1")
    assert not pinned(torch.device("cpu")) and not pinned("mps") and not pinned(None)


def test_cpu_batches_are_used_in_place():
    a = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    t = to_device(a, torch.device("cpu"))
    assert np.shares_memory(t.numpy(), a)  # no copy, nothing pinned
    nhwc = to_device(a, torch.device("cpu"), channels_last=True)
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    assert nhwc.stride() == (48, 1, 12, 3)  # (C*H*W, 1, W*C, C) for (2, 3, 4, 4)
    assert torch.equal(nhwc, torch.from_numpy(a))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_transfer_is_exact():
    a = np.random.default_rng(0).normal(size=(4, 3, 8, 8)).astype(np.float32)
    t = to_device(a, CUDA, channels_last=True)
    assert t.device.type == "cuda" and t.is_contiguous(memory_format=torch.channels_last)
    assert np.array_equal(t.cpu().numpy(), a)


def conv_net():  # 3*8*9 + 8*8*9 = 792 conv weights against 8+8+8*4+4 = 52 others
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3), nn.Flatten(),
                         nn.Linear(8, 4))


def linear_net():  # 16*64 + 64 linear parameters against a 1*4*2*2 = 16 weight patch conv
    return nn.Sequential(nn.Conv2d(1, 4, 2, bias=False), nn.Flatten(), nn.Linear(16, 64))


def test_conv_dominated_counts_parameters():
    assert conv_dominated(conv_net())
    assert not conv_dominated(linear_net())
    assert not conv_dominated(nn.Sequential())


def test_channels_last_policy():
    nets = {"G": conv_net(), "text": linear_net()}
    assert channels_last_nets(nets, CUDA, BF16) == ["G"]
    assert channels_last_nets(nets, CUDA, FP16) == ["G"]
    assert channels_last_nets(nets, CUDA, FP32) == []  # float32: not measured, left NCHW
    assert channels_last_nets(nets, torch.device("cpu"), BF16) == []  # measured: no gain
    assert channels_last_nets(nets, "mps", BF16) == []


def test_use_channels_last_converts_the_named_networks_only():
    nets = {"G": conv_net(), "other": conv_net()}
    use_channels_last(nets, ["G"])
    assert nets["G"][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert nets["G"][0].weight.stride() == (27, 1, 9, 3)  # (C*kh*kw, 1, kw*C, C)
    assert nets["other"][0].weight.stride() == (27, 9, 3, 1)


def test_speed_report_records_the_memory_format(p2p_weights):
    from medxlate.synth.model import load_model
    from medxlate.synth.speed import prepare

    model = load_model("pix2pix", p2p_weights, torch.device("cpu"))
    speed = prepare(model, "auto", False, 4)
    assert speed.report()["memory_format"] == "contiguous"  # CPU: policy says NCHW
    assert all(p.is_contiguous() for p in model.nets["G"].parameters())


def test_speed_puts_conv_nets_channels_last_for_cuda_bf16(p2p_weights):
    """The decision for a CUDA run, taken on a model object that only names that device
    (prepare moves no tensor; the networks stay on the CPU)."""
    from medxlate.synth.model import load_model
    from medxlate.synth.speed import prepare

    model = load_model("pix2pix", p2p_weights, torch.device("cpu"))
    model.device = CUDA
    assert prepare(model, "fp32", False, 4).report()["memory_format"] == "contiguous"
    speed = prepare(model, "bf16", False, 4)
    assert speed.precision.label == "bf16"
    assert speed.report()["memory_format"] == "channels_last"
    weights = [m.weight for m in model.nets["G"].modules() if isinstance(m, nn.Conv2d)]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last)
                           for w in weights)
