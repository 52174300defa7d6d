"""Issue 16, synthesis speed options: --precision, --compile, --batch-size auto.

Oracles: bf16 autocast of a convolution equals a float64 convolution of the bf16-rounded
input and weights (computed here by hand); compile fallback output equals the eager net's;
auto batch sizes from hand-computed memory budgets; OOM splitting equals the unsplit call.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.errors import UsageError
from medxlate.io.readers import read_volume
from medxlate.synth.autobatch import CPU_AUTO_BATCH, SplitOnOOM, fit_batch, parse_batch_size
from medxlate.synth.precision import CompileOrEager, resolve_precision
from tests.synth.conftest import phantom_mr, write_nifti

runner = CliRunner()
AFF = np.diag([1.5, 1.5, 2.0, 1.0])


def test_precision_policy_on_cpu():
    assert resolve_precision("auto", "cpu").dtype is None
    assert resolve_precision("fp32", "cpu").label == "fp32"
    assert resolve_precision("bf16", "cpu").dtype is torch.bfloat16
    with pytest.raises(UsageError, match="fp16 needs a GPU"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(UsageError, match="choose from"):
        resolve_precision("fp8", "cpu")
    vae = SimpleNamespace(name="vae", extra={"autoencoder": True})
    with pytest.raises(UsageError, match="must run in float32"):
        resolve_precision("bf16", "cpu", vae)
    declared = SimpleNamespace(name="x", extra={})
    family = SimpleNamespace(float32_only="normalising flow")
    with pytest.raises(UsageError, match="normalising flow"):
        resolve_precision("bf16", "cpu", declared, family)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_is_bf16_on_cuda_unless_the_model_needs_float32():
    assert resolve_precision("auto", "cuda").label == "bf16"
    vae = SimpleNamespace(name="vae", extra={"autoencoder": True})
    auto = resolve_precision("auto", "cuda", vae)
    assert auto.dtype is None and "float32" in auto.note


def test_bf16_context_rounds_conv_operands_to_bf16():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    with resolve_precision("bf16", "cpu").context():
        low = conv(x)
    assert low.dtype == torch.bfloat16
    # Oracle: float64 convolution of the operands rounded to bf16, result rounded to bf16.
    r = lambda t: t.detach().to(torch.bfloat16).double()
    ref = torch.nn.functional.conv2d(r(x), r(conv.weight), r(conv.bias), padding=1)
    assert torch.allclose(low.double(), ref.to(torch.bfloat16).double(), rtol=1e-2, atol=1e-2)
    full = conv(x)
    assert (low.float() - full).abs().max() > 0  # it did change the arithmetic


def test_compile_falls_back_to_eager_with_one_note():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    x = torch.randn(5, 4)

    def broken_backend(gm, example_inputs):
        raise RuntimeError("no compiler here")

    notes = []
    wrapped = CompileOrEager(net, backend=broken_backend, note=notes.append, name="G")
    assert torch.equal(wrapped(x), net(x))
    assert torch.equal(wrapped(x), net(x))
    assert len(notes) == 1 and notes[0].startswith("note: --compile: G runs uncompiled")
    assert len(list(wrapped.parameters())) == 2  # attributes are the eager net's


def test_compile_with_a_working_backend_matches_eager():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    x = torch.randn(5, 4)
    notes = []
    wrapped = CompileOrEager(net, backend="eager", note=notes.append)
    assert torch.allclose(wrapped(x), net(x), atol=1e-6) and wrapped.failed is None
    assert notes == []


def test_fit_batch_hand_values():
    # per slice 100, fixed 50: 0.8 * 1000 - 50 = 750 -> 7 slices
    assert fit_batch(1000, 150, 250) == 7
    assert fit_batch(100, 150, 250) == 1  # never below one
    assert fit_batch(10**12, 150, 250, cap=64) == 64


def test_parse_batch_size():
    assert parse_batch_size("auto") == "auto" and parse_batch_size("16") == 16
    for bad in ("0", "-2", "many"):
        with pytest.raises(UsageError, match="--batch-size"):
            parse_batch_size(bad)


def test_out_of_memory_batches_split_and_agree():
    calls = []

    class Family:
        def translate(self, nets, source, **kwargs):
            calls.append(source.shape[0])
            if source.shape[0] > 3:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return source * 2 + 1

    fam = SplitOnOOM(Family())
    x = torch.arange(8.0).reshape(8, 1, 1, 1)
    assert torch.equal(fam.translate({}, x), x * 2 + 1)
    assert fam.limit == 2 and fam.splits == 2
    assert calls == [8, 4, 2, 2, 2, 2]  # 8 fails, 4 fails, then pairs
    calls.clear()
    assert torch.equal(fam.translate({}, x[:5]), x[:5] * 2 + 1)
    assert calls == [2, 2, 1]  # later batches are cut before they are tried

    class Broken:
        def translate(self, nets, source, **kwargs):
            raise ValueError("not memory")

    with pytest.raises(ValueError):
        SplitOnOOM(Broken()).translate({}, x)


def _synth(weights, src, out, *extra):
    return runner.invoke(app, ["synthesize", "--model", "pix2pix", "--weights", str(weights),
                               "--in", str(src), "--out", str(out), "--quiet", *extra])


def test_cli_precision_and_auto_batch_on_cpu(tmp_path, p2p_weights):
    src = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((24, 24, 4)), AFF)
    outs = {}
    for label, extra in (("fp32", ["--precision", "fp32", "--batch-size", "auto"]),
                         ("bf16", ["--precision", "bf16"])):
        report = tmp_path / f"{label}.json"
        res = _synth(p2p_weights, src, tmp_path / f"{label}.nii.gz", "--report", str(report),
                     *extra)
        assert res.exit_code == 0, res.output
        outs[label] = read_volume(tmp_path / f"{label}.nii.gz").array
        speed = json.loads(report.read_text())["speed"]
        assert speed["precision"] == label
        if label == "fp32":
            assert speed["batch_size"] == CPU_AUTO_BATCH
            assert speed["batch_size_auto"].startswith(f"{CPU_AUTO_BATCH} (fixed on cpu")
    body = outs["fp32"] > -1024
    diff = np.abs(outs["bf16"] - outs["fp32"])[body]
    assert diff.max() > 0  # bf16 really ran
    assert diff.mean() < 20  # a random tiny net: bf16 keeps about 3 significant digits
    res = _synth(p2p_weights, src, tmp_path / "x.nii.gz", "--precision", "fp16")
    assert res.exit_code == 2 and "fp16 needs a GPU" in res.output
    res = _synth(p2p_weights, src, tmp_path / "x.nii.gz", "--batch-size", "lots")
    assert res.exit_code == 2 and "--batch-size" in res.output


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_batch_probe_on_cuda(p2p_weights):
    from medxlate.synth.model import load_model
    from medxlate.synth.speed import prepare

    model = load_model("pix2pix", p2p_weights, torch.device("cuda"))
    speed = prepare(model, "auto", False, "auto", dict(model.config), "one-shot")
    assert 1 <= speed.batch_size <= 256 and "bytes per" in speed.batch_note
    assert speed.precision.label in ("bf16", "fp32")
