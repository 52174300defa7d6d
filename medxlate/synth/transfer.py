"""Host -> device transfer of synthesis batches, and the networks' memory format.

- Pinned host memory: on CUDA a batch is copied into page-locked memory (torch's caching
  host allocator reuses those blocks) and sent with ``non_blocking=True``: the copy is a
  DMA transfer queued on the current stream, ordered before the model's kernels, and the
  host goes on assembling while it runs. On the CPU (and MPS) the array is used in place:
  ``torch.from_numpy`` shares its memory, there is nothing to transfer.
- channels_last (NHWC), a policy by device and precision: on CUDA under bf16/fp16 autocast,
  every network whose parameters are mostly convolution weights runs with NHWC weights and
  inputs: cuDNN's tensor-core convolutions work in NHWC, and NCHW tensors are transposed
  around each of them (PyTorch's "Channels Last Memory Format" tutorial; NVIDIA's deep
  learning performance guide on convolution layouts). On the CPU it stays off: with oneDNN on this project's CPU the
  pix2pix generator and the ddpm demo U-Net took 0.97-0.98x the CPU time in NHWC, no more
  than the noise of an A/A control in the same run (``benchmarks/cpu_fraction.py``).
  SynDiff's NCSN++ chooses NHWC by itself on every device. Not used in float32 on CUDA or
  on MPS (not measured); ``benchmarks/gpu.py`` measures the CUDA ratio in bf16 and fp32.
  NHWC outputs agree with NCHW to float32 rounding (sums in another order), not bit for bit.

Example:
    >>> import numpy as np, torch
    >>> pinned(torch.device("cuda", 0)), pinned(torch.device("cpu"))
    (True, False)
    >>> a = np.zeros((2, 1, 4, 4), np.float32)
    >>> np.shares_memory(to_device(a, torch.device("cpu")).numpy(), a)
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

REDUCED = ("bfloat16", "float16")


def pinned(device) -> bool:
    """Whether batches for ``device`` go through pinned memory (CUDA only)."""
    return getattr(device, "type", str(device).split(":")[0]) == "cuda"


def conv_dominated(net) -> bool:
    """Whether most of ``net``'s parameters are 2D convolution weights."""
    from torch import nn

    total = sum(p.numel() for p in net.parameters())
    conv = sum(m.weight.numel() for m in net.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    return total > 0 and conv * 2 > total


def channels_last_nets(nets: dict[str, Any], device, precision=None) -> list[str]:
    """Names of the networks that run channels_last (see the module docstring)."""
    kind = getattr(device, "type", str(device).split(":")[0])
    dtype = str(getattr(precision, "dtype", None) or "").replace("torch.", "")
    if kind != "cuda" or dtype not in REDUCED:
        return []
    return [name for name, net in nets.items() if conv_dominated(net)]


def use_channels_last(nets: dict[str, Any], names) -> None:
    """Put the 4-D weights of the networks ``names`` in NHWC order (in place)."""
    import torch

    for name in names:
        nets[name].to(memory_format=torch.channels_last)


def to_device(array: np.ndarray, device, channels_last: bool = False):
    """``array`` as a tensor on ``device`` (pinned and asynchronous on CUDA)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if pinned(device):
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    elif device is not None and tensor.device != torch.device(device):
        tensor = tensor.to(device)
    if channels_last and tensor.dim() == 4:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor
