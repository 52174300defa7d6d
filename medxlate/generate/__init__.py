"""Unconditional generation of synthetic slices (`medxlate generate`): a checkpoint trained
with ``pairing: unconditional`` draws N target slices (CT in HU, or MR) from noise and writes
them as NIfTI with the training spacing. See :func:`medxlate.generate.run.run_generate`.
"""

from medxlate.generate.run import GenerateRequest, run_generate

__all__ = ["GenerateRequest", "run_generate"]
