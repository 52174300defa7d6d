"""Training on a dataset without a validation split says so, once, and what val_every does."""

from __future__ import annotations

from conftest import TINY_DDPM, make_dataset

from medxlate.train import train


def _warnings(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("medxlate: warning:")]


def test_no_val_split_warns_once(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds", splits=("train",), n_slices=4)
    result = train("ddpm", ds, tmp_path / "r", config={"base": "demo", **TINY_DDPM,
                                                       "val_every": 1}, steps=2, device="cpu")
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert "no validation slices (0 subject(s) in split 'val')" in lines[0]
    assert "val_every=1 validates nothing" in lines[0]
    assert result.val == {}


def test_with_val_split_no_warning(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds", splits=("train", "val"), n_slices=4)
    result = train("ddpm", ds, tmp_path / "r", config={"base": "demo", **TINY_DDPM,
                                                       "val_every": 1}, steps=2, device="cpu")
    assert not [ln for ln in _warnings(capsys.readouterr().err) if "validation" in ln]
    assert "val_mae_hu" in result.val or "val_mae" in result.val
