"""One case of a synthesize run: check and read its input, prepare it, run or queue its
model stage, and write its outputs with the input's exact geometry."""

from __future__ import annotations

from medxlate.errors import InputError
from medxlate.io.atomic import check_writable
from medxlate.synth.inputs import Case
from medxlate.synth.request import SynthesizeRequest


def _done(case: Case) -> bool:
    return case.output.exists() and (case.uncertainty is None or case.uncertainty.exists())


def _read_case(case: Case, req: SynthesizeRequest, opts, fmt: str):
    """Check the case's outputs may be written, then read its input (a reader thread may
    run this ahead of the model)."""
    from medxlate.io.dicom_write import check_own_series
    from medxlate.io.readers import read_volume
    from medxlate.synth.volume import translation_modalities

    check_writable(case.output, req.overwrite,
                   folder_check=check_own_series if fmt == "dicom" else None)
    if case.uncertainty is not None:
        check_writable(case.uncertainty, req.overwrite)
    src_mod = translation_modalities(opts)[0]
    vol = read_volume(case.source, modality=src_mod, series=req.series)
    if vol.modality not in ("unknown", src_mod):
        raise InputError(f"{case.source} is {vol.modality}, but the translation "
                         f"{opts.source}->{opts.target} reads {src_mod}")
    return vol


def _prefetch(case: Case, req: SynthesizeRequest, model, opts, fmt: str):
    """The reader thread's work: read the input and, for 2D/2.5D models, prepare it (mask,
    resampling, normalisation, slice plan) so the model thread only runs the model."""
    from medxlate.synth.volume import prepare_volume

    vol = _read_case(case, req, opts, fmt)
    if getattr(model.spec, "spatial_dims", "2d") == "3d":
        return vol
    return vol, prepare_volume(vol, model, opts)


def _one_case(case: Case, req: SynthesizeRequest, model, opts, fmt: str, generator,
              bars, vol, stage, key, precision=None):
    """Start one case; returns ``(finish, bar, finished)``.

    ``vol`` is the input as read, or ``(input, prepared)`` from :func:`_prefetch` (None:
    read it here). A 2D/2.5D model's tiles go to ``stage`` (a
    :class:`~medxlate.synth.stream.TileStream`), which may hold the last ones until the next
    case fills their batch; a 3D model translates the volume here. ``finished`` lists the
    ``(key, output or exception)`` of the cases whose model stage ended meanwhile (this one
    among them unless its tiles wait); ``finish(output)`` gives this case's (record fields,
    job that writes its outputs), the job resampling the result back onto the input grid
    (finish_volume) first.
    """
    import contextlib

    from medxlate.io.readers import write_volume
    from medxlate.synth.grid import file_affine, restore_orientation
    from medxlate.synth.volume import (
        finish_volume,
        prepare_volume,
        synthesize_volume,
        volume_info,
    )

    prepared = None
    if isinstance(vol, tuple):
        vol, prepared = vol
    if vol is None:
        vol = _read_case(case, req, opts, fmt)
    three_d = getattr(model.spec, "spatial_dims", "2d") == "3d"
    if prepared is None and not three_d:
        prepared = prepare_volume(vol, model, opts)
    bar = bars.slices(case.stem)

    def progress(n: int, total: int) -> None:
        bar.total = total
        bar.update(n)

    def finish(output):
        done = output if prepared is None else None
        info = done[2] if done is not None else volume_info(prepared)

        def write() -> None:
            sct, std, _ = done if done is not None else finish_volume(prepared, output)
            if fmt == "dicom":
                reference = vol if vol.meta.get("format") == "dicom" else None
                write_volume(sct, case.output, overwrite=req.overwrite, reference=reference,
                             description=f"medxlate synthetic {sct.modality} "
                                         f"({model.spec.name})")
            else:
                affine = file_affine(case.source)
                write_volume(restore_orientation(sct, affine), case.output,
                             overwrite=req.overwrite)
            if std is not None and case.uncertainty is not None:
                write_volume(restore_orientation(std, file_affine(case.source)),
                             case.uncertainty, overwrite=req.overwrite)

        return {"shape": list(vol.shape), "spacing_mm": list(vol.spacing), **info}, write

    if not three_d:
        return finish, bar, stage.add(key, prepared, generator, progress)
    try:
        with precision.context() if precision is not None else contextlib.nullcontext():
            return finish, bar, [(key, synthesize_volume(vol, model, opts, generator,
                                                         progress=progress))]
    except BaseException:
        bar.close()
        raise
