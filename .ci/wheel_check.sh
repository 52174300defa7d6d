#!/usr/bin/env bash
# CI: medxlate installed like any Python package. Build the wheel from a copy of the checkout,
# install it (--no-deps) into a fresh virtual environment outside the checkout, and run
# README's main command there from another directory: the shipped weights must come from the
# installed package. The fresh environment reuses the current environment's packages (torch...)
# through a .pth file instead of downloading them again.
# Usage: .ci/wheel_check.sh  (with the CI virtual environment active)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="$(command -v python)"
work="$(mktemp -d "${TMPDIR:-/tmp}/medxlate-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
unset MEDXLATE_WEIGHTS_DIR PYTHONPATH
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# 1. The wheel, built from a copy (the checkout gets no build/ or .egg-info).
mkdir "$work/src"
(cd "$repo" && tar --exclude=__pycache__ -cf - pyproject.toml README.md medxlate weights) \
    | tar -xf - -C "$work/src"
isolation=()
if "$python" -c "import setuptools" 2>/dev/null; then isolation=(--no-build-isolation); fi
"$python" -m pip wheel "$work/src" --no-deps "${isolation[@]}" -q -w "$work/dist"
wheel="$(ls "$work"/dist/medxlate-*.whl)"

# 2. A fresh environment outside the checkout that sees the CI environment's packages.
"$python" -m venv --without-pip "$work/venv"
venv_python="$work/venv/bin/python"
site="$("$venv_python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
"$python" -c "import sysconfig; p = sysconfig.get_paths(); print(p['purelib']); print(p['platlib'])" \
    | sort -u > "$site/medxlate-ci-deps.pth"
"$python" -m pip --python "$venv_python" install --no-deps -q "$wheel"

# 3. README's main command, run from outside the checkout with the installed medxlate.
mkdir "$work/run" && cd "$work/run"
found="$("$venv_python" -c "import medxlate.weights as w; print(w.__file__); print(w.weights_dir())")"
case "$found" in
    "$work/venv/"*) ;;
    *) echo "wheel_check: medxlate was not imported from the fresh environment: $found" >&2; exit 1 ;;
esac
echo "$found" | tail -1 | grep -q "^$work/venv/.*/medxlate/_weights$" \
    || { echo "wheel_check: shipped weights not inside the package: $found" >&2; exit 1; }
"$work/venv/bin/medxlate" weights verify
"$work/venv/bin/medxlate" synthesize --quiet --model unet-2.5d \
    --in "$repo/examples/brain-000/mr.nii.gz" --out "$work/x/sct.nii.gz"
"$venv_python" -m medxlate info "$work/x/sct.nii.gz" --json > /dev/null
echo "wheel_check: ok ($(basename "$wheel") installed outside the checkout ran README's main command)"
