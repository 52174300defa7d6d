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


# -- blocks that name their spec: README's results table and its dose table side by side -------

def _dose(row, **metrics):
    row["dose"] = {"metrics": metrics, "subjects": [], "failed": []}
    return row


def _floor():
    row = _row("floor-2mm", "mr->ct", 61.4, "reference")
    row.update(what="the floor", grid={"spacing_mm": [2.0, 2.0, 2.0]})
    return row


DOSE_RESULT = {
    **RESULT, "spec": "readme-dose",
    "rows": [_dose(_row("pix2pix", "mr->ct", 162.5), gamma_2_2=100.0, gamma_1_1=99.28,
                   dose_mae_body=0.104, dose_mae_high=1.06, target_d98_diff=0.99,
                   target_mean_diff=-1.084)],
    "references": [_row("constant", "mr->ct", 300.0, "reference"),
                   _dose(_floor(), gamma_2_2=99.91, gamma_1_1=97.31, dose_mae_body=0.02,
                         dose_mae_high=None, target_d98_diff=0.0, target_mean_diff=0.01)],
    "dose": {"modality": "photon", "prescription_gy": 60.0, "fractions": 30,
             "target": "label:10", "beams": [0.0, 72.0, 144.0, 216.0, 288.0],
             "dose_grid_mm": 4.0, "ct_grid_mm": 2.0, "calibration": None, "references": True}}
README_RESULT = {**RESULT, "rows": [_row("pix2pix", "mr->ct", 162.5)]}

# The Markdown each bench must write, by hand (not produced by the code under test).
HEAD = "| row | grid | budget | sampler | s / volume | MAE (HU) | PSNR (dB) | SSIM | above " \
       "floor | vs intensity map |"
PIX = "| pix2pix | 2 mm | 3000 steps, 40.0 min, cpu (x86_64), 24 train subjects (shipped) | " \
      "one-shot | 5.5 | 162.5 | 20.00 | 0.500 | +101.1 | -87.5 |"
CONSTANT = "| reference: constant (the reference) | input grid | none | - | - | 300.0 | 20.00 | " \
           "0.500 | - | - |"
DOSE_BLOCK = f"""<!-- bench:begin readme-dose mr->ct -->
Generated by `medxlate bench --spec readme-dose` (2026-12-07T20:00:00Z; phantoms; device cpu, \
OMP_NUM_THREADS=1, x86_64, 2 CPU(s)). Do not edit by hand: `python -m \
medxlate.bench.readme_table W/bench.json README.md` rewrites it.

{HEAD} γ 2%/2mm (%) | γ 1%/1mm (%) | dose MAE body (% Rx) | dose MAE >90% (% Rx) | ΔD98 (% Rx) \
| ΔDmean (% Rx) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{PIX} 100.00 | 99.28 | 0.10 | 1.06 | 0.99 | -1.08 |
{CONSTANT} - | - | - | - | - | - |
| reference: floor-2mm (the floor) | 2 mm | none | - | - | 61.4 | 20.00 | 0.500 | - | - | \
99.91 | 97.31 | 0.02 | - | 0.00 | 0.01 |

Dose columns: `medxlate evaluate --dose photon` on every held-out subject (docs/dose.md): a \
plan on the reference CT (60 Gy in 30 fx, target `label:10`, gantry 0, 72, 144, 216, 288 deg, \
4 mm dose grid) recomputed on the prediction; dose differences in % of the prescription, means \
over the subjects that planned (failures in bench.json). The constant row has no air for a beam \
to cross and gets no dose figures.
<!-- bench:end -->"""
README_BLOCK = f"""<!-- bench:begin mr->ct -->
Generated by `medxlate bench --spec readme` (2026-12-07T20:00:00Z; phantoms; device cpu, \
OMP_NUM_THREADS=1, x86_64, 2 CPU(s)). Do not edit by hand: `python -m \
medxlate.bench.readme_table W/bench.json README.md` rewrites it.

{HEAD}
|---|---|---|---|---|---|---|---|---|---|
{PIX}
{CONSTANT}
<!-- bench:end -->"""
OLD_README = "<!-- bench:begin mr->ct -->\nREADME's table, by the readme bench\n<!-- bench:end -->"
OLD_DOSE = "<!-- bench:begin readme-dose mr->ct -->\nhand-made dose table\n<!-- bench:end -->"


def test_each_spec_rewrites_only_its_own_blocks(tmp_path, capsys):
    dose_json, readme_json = tmp_path / "dose.json", tmp_path / "readme.json"
    dose_json.write_text(json.dumps(DOSE_RESULT))
    readme_json.write_text(json.dumps(README_RESULT))
    doc = tmp_path / "README.md"
    doc.write_text(f"# T\n\n{OLD_README}\n\n## Dose\n\n{OLD_DOSE}\n\nend\n")

    assert main([str(dose_json), str(doc)]) == 0
    assert doc.read_text() == f"# T\n\n{OLD_README}\n\n## Dose\n\n{DOSE_BLOCK}\n\nend\n"
    assert capsys.readouterr().out == f"rewrote 1 bench block(s) of spec readme-dose in {doc}\n"

    assert main([str(readme_json), str(doc)]) == 0
    assert doc.read_text() == f"# T\n\n{README_BLOCK}\n\n## Dose\n\n{DOSE_BLOCK}\n\nend\n"

    assert main([str(dose_json), str(doc)]) == 0         # again: same text, other block kept
    assert doc.read_text() == f"# T\n\n{README_BLOCK}\n\n## Dose\n\n{DOSE_BLOCK}\n\nend\n"


def test_a_bench_without_a_block_of_its_spec_leaves_the_file_alone(tmp_path, capsys):
    dose_json, other = tmp_path / "dose.json", tmp_path / "other.json"
    dose_json.write_text(json.dumps(DOSE_RESULT))
    other.write_text(json.dumps({**README_RESULT, "spec": "my-bench"}))
    doc = tmp_path / "README.md"
    doc.write_text(f"{OLD_README}\n")                   # README's block: spec readme only
    for bench, named in ((dose_json, "readme-dose"), (other, "my-bench")):
        assert main([str(bench), str(doc)]) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"medxlate: error: {doc}: no <!-- bench:begin {named} --> ... "
                       f"<!-- bench:end --> block for spec '{named}'"]
    assert doc.read_text() == f"{OLD_README}\n"


def test_bad_markers_and_inputs_are_one_line_and_exit_3(tmp_path, capsys):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(README_RESULT))
    doc = tmp_path / "README.md"
    for marker, expected in (("mr->ct ct->mr", "expected at most a spec name and a direction"),
                             ("readme extra", "expected at most a spec name and a direction"),
                             ("mr->pet", "unknown direction 'mr->pet'")):
        text = f"{OLD_README}\n<!-- bench:begin {marker} -->\nx\n<!-- bench:end -->\n"
        doc.write_text(text)
        assert main([str(bench), str(doc)]) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
        assert doc.read_text() == text
    bench.write_text("[1, 2]")
    assert main([str(bench), str(doc)]) == 3
    assert capsys.readouterr().err.strip() == \
        f"medxlate: error: {bench}: not a bench.json (no spec name)"
