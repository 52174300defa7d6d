"""Volume -> slices -> model + sampler -> volume, for every 2D/2.5D model (`synthesize`).

Public API (importing it does not import torch):
:func:`run_synthesize` with a :class:`SynthesizeRequest` (what the CLI calls), and
:func:`load_model` + :func:`synthesize_volume` to translate a :class:`~medxlate.io.Volume`
in memory.

Example:
    >>> from medxlate.synth import SynthesizeRequest, run_synthesize    # doctest: +SKIP
    >>> run_synthesize(SynthesizeRequest("pix2pix", Path("mr.nii.gz"), Path("sct.nii.gz"),
    ...                                  weights=Path("run/model.safetensors")))
"""

from medxlate.synth.model import LoadedModel, load_model
from medxlate.synth.run import RunResult, SynthesizeRequest, run_synthesize
from medxlate.synth.volume import SynthOptions, synthesize_volume

__all__ = ["LoadedModel", "RunResult", "SynthOptions", "SynthesizeRequest", "load_model",
           "run_synthesize", "synthesize_volume"]
