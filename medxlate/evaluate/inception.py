"""Inception-v3 as the FID/IS implementations use it (torch side; imported on demand).

The network is the TensorFlow "inception-2015-12-05" graph (Szegedy et al. 2016) in the
module layout shared by pytorch-fid (``pt_inception-2015-12-05-6726825d.pth``) and
torch-fidelity (``weights-inception-2015-12-05-6726825d.pth``): torchvision's Inception3
names (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, ...,
``fc.weight`` of 1008 x 2048), no auxiliary head, and the graph's two quirks: average pools
that exclude the zero padding, and a max pool in the last block's pool branch. Weights are
never downloaded: the user passes the file (``--inception PATH``), read with
``torch.load(weights_only=True)`` or as safetensors.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.errors import InputError

INPUT_SIZE = 299


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 1e-3, the TF graph's) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool divides by the number of real (unpadded) inputs.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _run(x: torch.Tensor, *layers) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


class BlockA(nn.Module):       # Mixed_5b..5d: 35 x 35
    def __init__(self, cin: int, pool: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x), _run(x, self.branch5x5_1, self.branch5x5_2),
            _run(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            self.branch_pool(_avg3(x))], 1)


class BlockB(nn.Module):       # Mixed_6a: 35 -> 17
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            _run(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):       # Mixed_6b..6e: 17 x 17, factorised 7x7
    def __init__(self, cin: int, c7: int):
        super().__init__()
        row = {"kernel": (1, 7), "padding": (0, 3)}
        col = {"kernel": (7, 1), "padding": (3, 0)}
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            _run(x, self.branch7x7_1, self.branch7x7_2, self.branch7x7_3),
            _run(x, self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                 self.branch7x7dbl_4, self.branch7x7dbl_5),
            self.branch_pool(_avg3(x))], 1)


class BlockD(nn.Module):       # Mixed_7a: 17 -> 8
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            _run(x, self.branch3x3_1, self.branch3x3_2),
            _run(x, self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3,
                 self.branch7x7x3_4),
            F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):       # Mixed_7b (average pool), Mixed_7c (max pool): 8 x 8
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = _run(x, self.branch3x3dbl_1, self.branch3x3dbl_2)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(a), self.branch3x3_2b(a),
                          self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
                          self.branch_pool(pooled)], 1)


class InceptionStem(nn.Module):
    """Inception-v3's first stages, up to Mixed_5d (the layout's names, so that their weights
    load from the full file); ALDM's perceptual loss uses their features."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = (BlockA(192, 32), BlockA(256, 64),
                                                       BlockA(288, 64))

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of Conv2d_2b, Conv2d_4a and Mixed_5d for images (B, 3, H, W)."""
        a = _run(x, self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3)
        b = _run(F.max_pool2d(a, 3, stride=2), self.Conv2d_3b_1x1, self.Conv2d_4a_3x3)
        c = _run(F.max_pool2d(b, 3, stride=2), self.Mixed_5b, self.Mixed_5c, self.Mixed_5d)
        return [a, b, c]


class InceptionV3(InceptionStem):
    """Images (B, 3, H, W) in [-1, 1] -> (pool3 features (B, 2048), logits (B, 1008))."""

    def __init__(self):
        super().__init__()
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b, self.Mixed_6c = BlockC(768, 128), BlockC(768, 160)
        self.Mixed_6d, self.Mixed_6e = BlockC(768, 160), BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b, self.Mixed_7c = BlockE(1280, False), BlockE(2048, True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _run(self.stages(x)[-1], self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                 self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c)
        pool3 = x.mean(dim=(2, 3))
        # The Inception Score's reference code (Salimans et al. 2016) takes the softmax of
        # pool3 @ W without the bias; torch-fidelity calls these "logits_unbiased".
        return pool3, pool3 @ self.fc.weight.T


#: The top-level module names of the layout (a file with any other name is not Inception-v3).
_NAMES = frozenset({"Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1",
                    "Conv2d_4a_3x3", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
                    "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b",
                    "Mixed_7c", "fc"})


def read_state(path: Path | str, label: str = "--inception") -> dict[str, torch.Tensor]:
    """The tensors of an Inception-v3 weights file (.pth state dict or safetensors), without
    BatchNorm's ``num_batches_tracked`` counters; ``label`` names the option in errors.

    Raises:
        InputError: missing or unreadable file, or not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{label} {path}: file not found (pass the Inception-v3 weights "
                         "of pytorch-fid or torch-fidelity; medxlate never downloads them)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and safetensors errors differ
        raise InputError(f"{label} {path}: not a readable weights file ({exc})") from exc
    if not isinstance(state, dict):
        raise InputError(f"{label} {path}: expected a state dict")
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def load_into(net: nn.Module, state: dict[str, torch.Tensor], path, label: str) -> None:
    """Load ``state`` into ``net`` (which may be a leading part of Inception-v3: the
    file's other tensors are ignored); an InputError when a tensor of ``net`` is missing."""
    own = set(net.state_dict())
    missing, unexpected = net.load_state_dict({k: v for k, v in state.items() if k in own},
                                              strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in own and k.split(".")[0] not in _NAMES]
    if missing or unexpected or extra:
        raise InputError(f"{label} {path}: not the pytorch-fid/torch-fidelity Inception-v3 "
                         f"layout (missing {missing[:2]}, unexpected {(unexpected + extra)[:2]})")


def load_inception(path: Path | str, device="cpu") -> InceptionV3:
    """An :class:`InceptionV3` with the weights of ``path`` (.pth state dict or safetensors).

    Raises:
        InputError: missing file, or a state dict of another layout.
    """
    net = InceptionV3()
    load_into(net, read_state(path), path, "--inception")
    return net.to(device).eval()


@torch.no_grad()
def inception_outputs(net: InceptionV3, images, batch_size: int = 32, device="cpu",
                      size: int = INPUT_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """(pool3 (N, 2048), unbiased logits (N, 1008)) of grey images in [0, 1], (N, H, W).

    As pytorch-fid: bilinear resize to ``size`` x ``size`` (299, the network's input size;
    the network runs from 75 up, which tests use for speed), align_corners False, scaled to
    [-1, 1]; the grey channel is repeated to RGB.
    """
    feats, logits = [], []
    for start in range(0, len(images), batch_size):
        x = torch.as_tensor(images[start:start + batch_size], dtype=torch.float32)[:, None]
        x = F.interpolate(x.to(device), size=(size, size), mode="bilinear",
                          align_corners=False)
        f, lg = net((2 * x - 1).expand(-1, 3, -1, -1))
        feats.append(f.double().cpu())
        logits.append(lg.double().cpu())
    return torch.cat(feats), torch.cat(logits)
