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


def test_contrasts_get_a_table_each_with_the_anatomy_columns(tmp_path):
    rows = []
    for contrast, mae in (("t1", 121.9), ("t2", 290.1)):
        row = _row("unet", "mr->ct", mae)
        row["contrast"] = contrast
        row["metrics"].update(bone_dice_300=0.784, brain_over_300_pct=6.84, air_mae=None)
        ref = _row("constant", "mr->ct", 226.6, "reference")
        ref["contrast"] = contrast
        rows.append((row, ref))
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({**RESULT, "rows": [r for r, _ in rows],
                                 "references": [f for _, f in rows]}))
    doc = tmp_path / "README.md"
    doc.write_text("<!-- bench:begin mr->ct -->\n<!-- bench:end -->\n")
    assert main([str(bench), str(doc)]) == 0
    t1, t2 = doc.read_text().split("**mr->ct, T2w MR**")
    assert "**mr->ct, T1w MR**" in t1
    # the anatomy cells: Dice, brain %, and '-' for a figure no subject had
    assert "| 121.9 | 20.00 | 0.500 | 0.784 | 6.84 | - | +60.5 |" in t1 and "290.1" not in t1
    assert "| 290.1 | 20.00 | 0.500 | 0.784 | 6.84 | - |" in t2
    # the reference rows have no anatomy figures here: '-' in each of the three cells
    assert "| 226.6 | 20.00 | 0.500 | - | - | - | - | - |" in t2
