"""curves.png from train.csv and val.csv alone, without torch (issue 22)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, header: str, rows: list[str]) -> None:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))


def test_curves_are_drawn_without_torch(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _write(run / "train.csv", "step,loss,grad_norm_unet,lr_factor,it_s,elapsed_s",
           [f"{s},{1 / s:.4f},0.5,1.0,10.0,{s * 0.1:.2f}" for s in range(10, 110, 10)])
    _write(run / "val.csv", "step,val_mae_hu,vol_mae_hu,vol_ssim,elapsed_s",
           ["20,300,310,0.5,2.1", "40,200,205,0.6,4.2", "60,250,240,0.6,6.3"])
    code = ("import sys; from medxlate.train.curves import draw_curves; "
            f"p = draw_curves({str(run)!r}); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(p)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    png = run / "curves.png"
    assert done.stdout.strip() == str(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import struct

    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (990, 630)                  # 11 x 7 inches at 90 dpi
    assert not [p for p in run.iterdir() if p.name != "curves.png" and p.suffix == ".png"]


def test_no_rows_no_picture(tmp_path):
    from medxlate.train.curves import draw_curves

    assert draw_curves(tmp_path) is None and not (tmp_path / "curves.png").exists()
