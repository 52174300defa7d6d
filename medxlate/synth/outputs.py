"""Checks on `medxlate synthesize` outputs made before anything is read or translated.

- No output is an input, lies inside an input DICOM series folder or (as a DICOM series
  folder) holds an input; ``--uncertainty`` and ``--report`` are paths of their own (exit 2).
- ``--overwrite`` of a DICOM output replaces a series medxlate wrote there, nothing else:
  a folder holding other files is refused (exit 4).
"""

from __future__ import annotations

from pathlib import Path

from medxlate.io.guard import Output, refuse_overlaps


def refuse_option_clashes(inputs: Path, out: Path, uncertainty: Path | None,
                          report: Path | None, weights: Path | None = None) -> None:
    """UsageError when --out, --uncertainty and --report name the same path, or one of
    them is the --weights file or the --in file (a folder --in may hold outputs: they are
    checked per case)."""
    others = [weights, inputs if Path(inputs).is_file() else None]
    refuse_overlaps(others=others, outputs=[
        Output("--out", out), Output("--uncertainty", uncertainty),
        Output("--report", report)])


def check_case_outputs(cases, inputs: Path, fmt: str, report: Path | None,
                       overwrite: bool) -> None:
    """Check every planned case (all parts of a sharded run: another part's input counts).

    Raises:
        UsageError: an output clashes with an input or with another output.
        OutputError: with ``overwrite``, a DICOM output folder holds files medxlate did not
            write.
    """
    outputs = [Output("--report", report)]
    for case in cases:
        outputs.append(Output("--out", case.output, folder=fmt == "dicom"))
        outputs.append(Output("--uncertainty", case.uncertainty))
    refuse_overlaps(images=[c.source for c in cases], outputs=outputs, others=[inputs])
    if fmt == "dicom" and overwrite:
        from medxlate.io.dicom_write import check_own_series

        for case in cases:
            if case.output.is_dir() and not case.output.is_symlink():
                check_own_series(case.output)
