"""The guard as synthesize runs it: one input volume against one loaded model."""

from __future__ import annotations

from typing import Any

from medxlate.errors import UnfamiliarInputError
from medxlate.io.volume import Volume
from medxlate.ood.check import check_summary
from medxlate.ood.summary import summarise


def judge(vol: Volume, meta, src_mod: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the input's summary, its findings) for canonical ``vol`` read as ``src_mod`` by a
    model whose checkpoint metadata is ``meta`` (:class:`medxlate.weights.CheckpointMeta`)."""
    data = getattr(meta, "data", None) or {}
    record = data.get("inputs")
    if record and record.get("modality") == "none":
        return {}, []
    summary = summarise(vol, src_mod, getattr(meta, "normalisation", None) or None)
    header = vol.meta.get("dicom", {}).get("Modality") if vol.meta.get("format") == "dicom" \
        else None
    found = check_summary(summary, src_mod, record, data.get("spacing_mm"),
                          tags=vol.meta.get("mr_sequence"),
                          header_modality=(header or "").upper() or None)
    return summary, found


def warning_line(name: str, model: str, findings: list[dict[str, Any]]) -> str:
    """The one warning line of an input outside what ``model`` was trained on."""
    return (f"{name}: outside what {model} was trained on: "
            + "; ".join(f["message"] for f in findings))


def refuse(name: str, model: str, findings: list[dict[str, Any]]) -> UnfamiliarInputError:
    """The --strict-inputs error of that input (exit 7), carrying its findings."""
    error = UnfamiliarInputError(warning_line(name, model, findings)
                                 + " (--strict-inputs)")
    error.findings = findings
    return error
