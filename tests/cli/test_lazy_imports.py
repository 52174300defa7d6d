"""`medxlate --help`, `models` and the I/O layer never import torch (checked in fresh processes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

RUN_APP = """
import sys
sys.argv = ["medxlate", *{args!r}]
import medxlate.cli.main as m
try:
    m.main()
except SystemExit:
    pass
print("TORCH-LOADED" if "torch" in sys.modules else "NO-TORCH")
"""


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    return out.stdout


@pytest.mark.parametrize("args", [["--help"], ["models", "--json"], ["info", "--help"]])
def test_cli_does_not_import_torch(args):
    out = _run(RUN_APP.format(args=args))
    assert out.strip().endswith("NO-TORCH"), out[-500:]
    if args == ["models", "--json"]:
        assert isinstance(json.loads(out[: out.rindex("NO-TORCH")]), list)


def test_importing_main_and_io_does_not_import_torch():
    code = ("import sys, medxlate.cli.main, medxlate.io, medxlate.io.dicom_read, "
            "medxlate.io.dicom_write, medxlate.io.itk, medxlate.weights; "
            "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))")
    assert _run(code).strip() == "['numpy']"


def test_importtime_lists_no_torch():
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import medxlate.cli.main"],
                         capture_output=True, text=True, timeout=120, check=True)
    modules = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()
               if line.startswith("import time:")]
    assert "medxlate.cli.main" in modules
    assert not [m for m in modules if m == "torch" or m.startswith("torch.")]
