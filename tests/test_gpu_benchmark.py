"""benchmarks/gpu.py: skips cleanly without CUDA; its pieces run on the CPU at toy sizes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _gpu_module():
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_skips_with_one_json_line_without_cuda(capsys):
    assert _gpu_module().main([]) == 0
    assert _lines(capsys) == [{"skipped": "no CUDA"}]


@pytest.mark.slow
def test_every_piece_runs_on_cpu_at_toy_sizes(capsys):
    assert _gpu_module().main(["--device", "cpu", "--tiny", "--modes", "fp32,bf16"]) == 0
    rows = _lines(capsys)
    figures = [r["figure"] for r in rows]
    for figure in ("matmul_peak", "generator_eval", "sampler", "memory_format",
                   "example_end_to_end", "cohort_pipeline_overhead", "train_steps", "total"):
        assert figure in figures, figure
    evals = [r for r in rows if r["figure"] == "generator_eval"]
    assert {(r["mode"], r["batch"]) for r in evals} == {(m, b) for m in ("fp32", "bf16")
                                                         for b in (1, 2)}
    for r in evals:  # TFLOP/s = FLOPs per evaluation * evaluations/s, in the same row
        assert r["tflops"] == pytest.approx(r["gflop_per_eval"] * r["evals_per_s"] / 1e3,
                                            rel=0.05, abs=2e-3)
    formats = [r for r in rows if r["figure"] == "memory_format"]
    assert {(r["model"], r["precision"]) for r in formats} == {
        (m, p) for m in ("pix2pix", "ddpm") for p in ("fp32", "bf16")}
    for r in formats:  # the ratio is the inverse ratio of the evaluation rates
        assert r["channels_last_time_ratio"] == pytest.approx(
            r["contiguous_evals_per_s"] / r["channels_last_evals_per_s"], rel=0.02)
    cohort = next(r for r in rows if r["figure"] == "cohort_pipeline_overhead")
    assert cohort["volumes"] == 2 and 0 <= cohort["overhead"] < 1
    assert cohort["model_s"] <= cohort["wall_s"]
    trains = {r["model"] for r in rows if r["figure"] == "train_steps"}
    assert trains == {"syndiff", "ddpm"}
    assert not any("error" in r or "skipped" in r for r in rows)
