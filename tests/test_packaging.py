"""medxlate installed like any package: `python -m medxlate`, weights inside the wheel.

The full check (wheel installed into a fresh environment, README's main command run outside
the checkout) is .ci/wheel_check.sh, run by .ci/run after the tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from medxlate import __version__

REPO = Path(__file__).resolve().parents[1]


def _run(args, cwd, env=None):
    env = {k: v for k, v in (env or os.environ).items() if k != "MEDXLATE_WEIGHTS_DIR"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.mark.parametrize("module", ["medxlate", "medxlate.cli.main"])
def test_python_dash_m_runs_the_cli(tmp_path, module):
    done = _run(["-m", module, "--version"], tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"medxlate {__version__}", done
    bad = _run(["-m", module, "synthesize", "--no-such-option"], tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("medxlate: error: ")


def test_weights_dir_env_still_wins(tmp_path, monkeypatch):
    from medxlate.weights import manifest, weights_dir

    (tmp_path / "manifest.json").write_text('{"files": {"x.safetensors": {"sha256": "0"}}}')
    monkeypatch.setenv("MEDXLATE_WEIGHTS_DIR", str(tmp_path))
    assert weights_dir() == tmp_path and list(manifest()["files"]) == ["x.safetensors"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built (no network, no build isolation) from a copy of the checkout."""
    pytest.importorskip("setuptools")
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    with tarfile.open(work / "src.tar", "w") as tar:  # keeps medxlate/_weights a link
        for name in ("pyproject.toml", "README.md", "medxlate", "weights"):
            tar.add(REPO / name, arcname=name,
                    filter=lambda info: None if "__pycache__" in info.name else info)
    with tarfile.open(work / "src.tar") as tar:
        tar.extractall(src, filter="tar")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(work / "dist")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return next((work / "dist").glob("medxlate-*.whl"))


def test_wheel_ships_every_weights_file_and_finds_them_installed(wheel, tmp_path):
    listed = json.loads((REPO / "weights" / "manifest.json").read_text())["files"]
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name, entry in listed.items():
            data = zf.read(f"medxlate/_weights/{name}")
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
            assert f"medxlate/_weights/{entry['card']}" in names
        assert zf.read("medxlate/_weights/manifest.json") == (
            REPO / "weights" / "manifest.json").read_bytes()
        assert "medxlate/__main__.py" in names
        assert not [n for n in names if n.startswith("weights/")]  # nothing at top level
        zf.extractall(tmp_path / "site")
    # the installed package (here: the unpacked wheel first on the path) finds its weights
    code = ("import medxlate.weights as w; from medxlate.weights import shipped_weights; "
            "p, sha = shipped_weights('syndiff-demo.safetensors'); "
            "print(w.__file__); print(p); print(w.sha256_file(p) == sha)")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    done = _run(["-c", code], tmp_path, env)
    assert done.returncode == 0, done.stderr
    module, weights, ok = done.stdout.split()
    site = str((tmp_path / "site").resolve())
    assert module.startswith(site) and weights.startswith(site + "/medxlate/_weights/")
    assert ok == "True"
