"""The marker-block rewriter: README tables come from bench.json, not from hands."""

from __future__ import annotations

import json

from medxlate.bench.readme_table import main


def _row(label, direction, mae, kind="model"):
    row = {"kind": kind, "label": label, "direction": direction,
           "metrics": {"mae": mae, "me": 1.0, "psnr": 20.0, "ssim": 0.5}, "subjects": [{}]}
    if kind == "model":
        row.update(model="pix2pix", grid={"spacing_mm": [2.0, 2.0, 2.0]}, sampler="one-shot",
                   sampler_steps=None, seconds_per_volume=5.5, trained_here=False,
                   entry={"weights": "shipped"}, above_floor=mae - 61.4,
                   vs_intensity_map=mae - 250.0,
                   budget={"steps": 3000, "minutes": 40.0, "device": "cpu (x86_64)",
                           "train_subjects": 24})
    else:
        row.update(what="the reference", grid={"spacing_mm": None}, budget={})
    return row


RESULT = {"spec": "readme", "created": "2026-12-07T20:00:00Z", "cohort": "phantoms",
          "device": "cpu", "threads": "1", "machine": "x86_64, 2 CPU(s)",
          "rows": [_row("pix2pix", "mr->ct", 162.5), _row("ip2p", "ct->mr", 0.473)],
          "references": [_row("constant", "mr->ct", 300.0, "reference")]}


def test_marker_blocks_are_rewritten_and_the_rest_kept(tmp_path, capsys):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(RESULT))
    doc = tmp_path / "README.md"
    doc.write_text("# Title\n\nbefore\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\n"
                   "between\n<!-- bench:begin ct->mr -->\n<!-- bench:end -->\nafter\n")
    assert main([str(bench), str(doc)]) == 0
    text = doc.read_text()
    assert "old table" not in text
    assert text.startswith("# Title\n\nbefore\n<!-- bench:begin -->\n")
    assert text.endswith("<!-- bench:end -->\nafter\n") and "\nbetween\n" in text
    first, second = text.split("between")
    assert "| pix2pix | 2 mm | 3000 steps, 40.0 min, cpu (x86_64), 24 train subjects " \
           "(shipped) | one-shot | 5.5 | 162.5 | 20.00 | 0.500 | +101.1 | -87.5 |" in first
    assert "| reference: constant (the reference) |" in first
    assert "**ct->mr**" in first and "| ip2p |" in first
    assert "| ip2p |" in second and "pix2pix" not in second and "0.473" in second
    assert main([str(bench), str(doc)]) == 0           # markers stay: runs again, same text
    assert doc.read_text() == text


def test_a_file_without_markers_is_left_alone(tmp_path, capsys):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(RESULT))
    doc = tmp_path / "README.md"
    doc.write_text("no markers here\n")
    assert main([str(bench), str(doc)]) == 3
    assert doc.read_text() == "no markers here\n"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no <!-- bench:begin -->" in err[0]
    assert main([str(bench)]) == 2
