"""Masked SSIM (SynthRAD2023) and masked MS-SSIM (SynthRAD2025) on torch.

Both follow the challenges' evaluation code exactly (see ``definitions.py``): intensities
are clipped to ``[low, high]``, voxels outside the mask set to ``low``, shifted by ``-low``;
the local statistics use a uniform 7x7x7 window with sample covariance (scikit-image's
``structural_similarity`` defaults, Wang et al. 2004 Eq. 13 with ``cov_norm = N / (N - 1)``)
and the map is averaged over mask voxels at least 3 voxels from the border.

The work streams float64 planes along the first axis (separable box sums from
:mod:`medxlate.evaluate.boxfilter`, a running sum across planes), restricted to the bounding
box of the mask, so memory stays at a few planes and a 512x512x200 CT takes seconds.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np
import torch

from medxlate.errors import InputError
from medxlate.evaluate.boxfilter import box_sum_3d, box_sum_valid, symmetric_pad

PlaneGetter = Callable[[int, slice, slice], torch.Tensor]

WIN = 7
K1, K2 = 0.01, 0.03
#: MS-SSIM scale weights (Wang, Simoncelli and Bovik 2003, Sec. 3.2), as in SynthRAD2025.
MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: MS-SSIM edge-pads each axis to this size so that 5 scales keep >= 7 voxels.
MS_MIN_SIZE = 97
RESUM_EVERY = 32


def pick_device(device: str | None = None) -> torch.device:
    """'cuda' when available (or asked for), else 'cpu'."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_window(shape: tuple[int, ...], win: int = WIN) -> None:
    """Raise InputError when an axis is shorter than the SSIM window."""
    short = [f"axis {i} has {n}" for i, n in enumerate(shape) if n < win]
    if short:
        raise InputError(f"SSIM needs at least {win} voxels along every axis; the volume "
                         f"{tuple(shape)} is too small ({', '.join(short)})")


def _stats_from_sums(sums: torch.Tensor, win: int):
    """Local means and sample (co)variances from box sums (skimage's formulas).

    ``sums`` holds the box sums of (x, y, x^2, y^2, xy) -> (ux, uy, vx, vy, vxy), or of
    (x, y, x^2 + y^2, xy) -> (ux, uy, vx + vy, vxy): SSIM needs only the sum of the two
    variances, and one moment fewer is a fifth less filtering.
    """
    n_win = win ** 3
    cov_norm = n_win / (n_win - 1.0)
    means = sums * (1.0 / n_win)
    ux, uy = means[0], means[1]
    vxy = cov_norm * (means[-1] - ux * uy)
    if sums.shape[0] == 5:
        vx = cov_norm * (means[2] - ux * ux)
        vy = cov_norm * (means[3] - uy * uy)
        return ux, uy, vx, vy, vxy
    return ux, uy, cov_norm * (means[2] - ux * ux - uy * uy), vxy


def ssim_from_stats(stats, data_range: float) -> torch.Tensor:
    """SSIM map, Eq. 13 of Wang et al. 2004 with C1 = (K1 R)^2, C2 = (K2 R)^2."""
    if len(stats) == 5:
        ux, uy, vx, vy, vxy = stats
        v_sum = vx + vy
    else:
        ux, uy, v_sum, vxy = stats
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (v_sum + c2)
    return num / den


def ssim_from_sums4(sums: torch.Tensor, win: int, data_range: float) -> torch.Tensor:
    """SSIM map straight from the box sums of (x, y, x^2 + y^2, xy), mostly in place.

    The same algebra as :func:`_stats_from_sums` + :func:`ssim_from_stats` with N = win^3:
    ux uy = S0 S1 / N^2, ux^2 + uy^2 = (S0^2 + S1^2) / N^2, vx + vy = c (S2 / N - (ux^2 +
    uy^2)), vxy = c (S3 / N - ux uy), c = N / (N - 1); fewer passes over memory.
    """
    n_win = win ** 3
    a2 = 1.0 / n_win ** 2
    cov_norm = n_win / (n_win - 1.0)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s0, s1, s2, s3 = sums
    uxuy = torch.mul(s0, s1).mul_(a2)
    uu = torch.mul(s0, s0).addcmul_(s1, s1).mul_(a2)
    vxy = torch.mul(s3, cov_norm / n_win).sub_(uxuy, alpha=cov_norm)
    vsum = torch.mul(s2, cov_norm / n_win).sub_(uu, alpha=cov_norm)
    num = uxuy.mul_(2).add_(c1).mul_(vxy.mul_(2).add_(c2))
    return num.div_(uu.add_(c1).mul_(vsum.add_(c2)))


def lcs_from_sums5(sums: torch.Tensor, win: int, data_range: float,
                   weight: float) -> torch.Tensor:
    """SynthRAD2025's per-scale map (L C S)^w from box sums of (x, y, x^2, y^2, xy).

    L = (2 ux uy + C1)/(ux^2 + uy^2 + C1), C = (2 sx sy + C2)/(vx + vy + C2),
    S = (vxy + C3)/(sx sy + C3), C3 = C2 / 2, sx = sqrt(max(vx, 0)) (Wang, Simoncelli and
    Bovik 2003, Eqs. 1-3), each term clipped at >= 0; L^w C^w S^w computed as (L C S)^w.
    Sample covariances as skimage (cov_norm = N / (N - 1)); mostly in place.
    """
    n_win = win ** 3
    cov_norm = n_win / (n_win - 1.0)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    c3 = c2 / 2
    s0, s1, s2, s3, s4 = sums
    ux = torch.mul(s0, 1.0 / n_win)
    uy = torch.mul(s1, 1.0 / n_win)
    uxuy = torch.mul(ux, uy)
    vx = torch.mul(s2, cov_norm / n_win).addcmul_(ux, ux, value=-cov_norm)
    vy = torch.mul(s3, cov_norm / n_win).addcmul_(uy, uy, value=-cov_norm)
    vxy = torch.mul(s4, cov_norm / n_win).sub_(uxuy, alpha=cov_norm)
    uu = ux.mul_(ux).addcmul_(uy, uy)
    sxsy = torch.clamp(vx, min=0).mul_(torch.clamp(vy, min=0)).sqrt_()
    lum = uxuy.mul_(2).add_(c1).div_(uu.add_(c1)).clamp_(min=0)
    con = torch.mul(sxsy, 2).add_(c2).div_(vx.add_(vy).add_(c2)).clamp_(min=0)
    struct = vxy.add_(c3).div_(sxsy.add_(c3)).clamp_(min=0)
    return lum.mul_(con).mul_(struct).pow_(weight)


def _moments(x: torch.Tensor, y: torch.Tensor, separate: bool = True) -> torch.Tensor:
    """Stack (x, y, x^2, y^2, xy), or (x, y, x^2 + y^2, xy) when not ``separate``."""
    out = torch.empty((5 if separate else 4, *x.shape), dtype=x.dtype, device=x.device)
    out[0].copy_(x)
    out[1].copy_(y)
    if separate:
        torch.mul(x, x, out=out[2])
        torch.mul(y, y, out=out[3])
    else:
        torch.mul(x, x, out=out[2])
        out[2].addcmul_(y, y)
    torch.mul(x, y, out=out[-1])
    return out


def window_map(x: torch.Tensor, y: torch.Tensor, map_fn: Callable, win: int = WIN) -> torch.Tensor:
    """A window map of whole volumes, valid part only (each axis shrinks by ``win - 1``)."""
    return map_fn(_stats_from_sums(box_sum_3d(_moments(x, y), win), win))


def _bbox(core: np.ndarray) -> tuple[list[int], list[int]]:
    lo, hi = [], []
    for ax in range(3):
        hit = np.flatnonzero(core.any(axis=tuple(a for a in range(3) if a != ax)))
        lo.append(int(hit[0]))
        hit_last = int(hit[-1]) + 1
        hi.append(hit_last)
    return lo, hi


@contextlib.contextmanager
def _single_thread(device: torch.device) -> Iterator[None]:
    """Run CPU work on one torch thread.

    The per-plane tensors (~10^5-10^6 values) are too small for intra-op threads to pay
    off, and on a loaded machine OpenMP's spinning barriers made the loop 5-10x slower.
    """
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def masked_window_mean(get_x: PlaneGetter, get_y: PlaneGetter, mask: np.ndarray,
                       map_fn: Callable, win: int = WIN, separate: bool = True,
                       raw_sums: bool = False) -> float:
    """Mean of a window map over mask voxels at least ``(win - 1) // 2`` from the border.

    Streams the volume plane by plane along the first axis: each prepared plane's moments
    (x, y, x^2, y^2, xy) are box-summed in-plane once, and the 3D box sum of an output plane
    is the running sum of the last ``win`` of them. Only the bounding box of the usable mask
    voxels is visited. ``get_x(j, rows, cols)`` returns prepared float64 plane ``j`` cropped
    to ``rows, cols`` (slices). ``map_fn`` maps the local statistics (see
    :func:`_stats_from_sums`; ``separate=False`` gives the 4-moment form), or the box sums
    themselves when ``raw_sums``, to the map values. Returns NaN when no mask voxel is usable.
    """
    r = (win - 1) // 2
    core = mask[r:-r, r:-r, r:-r] if r else mask
    if not core.any():
        return float("nan")
    lo, hi = _bbox(core)
    rows, cols = slice(lo[1], hi[1] + 2 * r), slice(lo[2], hi[2] + 2 * r)
    device = get_x(lo[0], slice(0, 1), slice(0, 1)).device
    with _single_thread(device):
        fn = map_fn if raw_sums else (lambda sums: map_fn(_stats_from_sums(sums, win)))
        return _stream(get_x, get_y, core, fn, win, lo, hi, rows, cols, separate)


def _stream(get_x, get_y, core, map_fn, win, lo, hi, rows, cols, separate) -> float:
    r = (win - 1) // 2
    ring: deque[torch.Tensor] = deque()
    running: torch.Tensor | None = None
    leaving = None  # the plane that drops out of the window at the next step
    total, count = 0.0, 0
    for j in range(lo[0], hi[0] + 2 * r):
        q = _moments(get_x(j, rows, cols), get_y(j, rows, cols), separate)
        q = box_sum_valid(box_sum_valid(q, 1, win), 2, win)
        ring.append(q)
        if len(ring) > win:
            ring.popleft()
        if len(ring) < win:
            continue
        if running is None or (j - lo[0]) % RESUM_EVERY == 0:
            # a fresh sum now and then keeps add/subtract rounding from drifting on long axes
            running = ring[0].clone()
            for plane in list(ring)[1:]:
                running.add_(plane)
        else:
            running.add_(ring[-1]).sub_(leaving)
        leaving = ring[0]
        sel = core[j - 2 * r, lo[1]:hi[1], lo[2]:hi[2]]
        if not sel.any():
            continue
        values = map_fn(running)
        n_sel = int(sel.sum())
        if n_sel == sel.size:
            total += float(values.sum())
        else:
            sel_t = torch.from_numpy(np.ascontiguousarray(sel)).to(values.device)
            total += float(torch.where(sel_t, values, 0.0).sum())
        count += n_sel
    return total / count


def prepare(array: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor, low: float,
            high: float, device: torch.device) -> torch.Tensor:
    """clip(a, low, high), ``low`` outside the mask, minus ``low``; float64 on ``device``."""
    t = torch.as_tensor(np.ascontiguousarray(array) if isinstance(array, np.ndarray) else array)
    t = t.to(device=device, dtype=torch.float64, copy=True)
    m = torch.as_tensor(np.ascontiguousarray(mask) if isinstance(mask, np.ndarray) else mask)
    m = m.to(device=device, dtype=torch.bool)
    return t.clamp_(low, high).masked_fill_(~m, low).sub_(low)


def ssim_masked(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, low: float = -1024.0,
                high: float = 3000.0, device: str | torch.device | None = None) -> float:
    """SynthRAD2023 SSIM: masked mean of the 3D SSIM map (data range ``high - low``).

    Args:
        pred, ref: (X, Y, Z) arrays (HU for CT), same shape.
        mask: bool array; the map is averaged where it is true, 3 voxels from the border.
        low, high: clip range; also the fill value outside the mask and the data range.
        device: torch device ("cpu", "cuda", None = best available).

    Raises:
        InputError: an axis is shorter than 7 voxels, or no mask voxel lies 3 voxels or
            more inside the volume border.
    """
    check_window(ref.shape)
    device = pick_device(device) if not isinstance(device, torch.device) else device
    mask = np.asarray(mask, dtype=bool)

    def getter(a: np.ndarray) -> PlaneGetter:
        return lambda j, rows, cols: prepare(a[j, rows, cols], mask[j, rows, cols], low, high,
                                             device)

    value = masked_window_mean(getter(pred), getter(ref), mask,
                               lambda sums: ssim_from_sums4(sums, WIN, high - low),
                               separate=False, raw_sums=True)
    if np.isnan(value):
        raise InputError("SSIM: the mask has no voxel 3 or more voxels inside the volume border")
    return value


def ssim_full_map(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, low: float = -1024.0,
                  high: float = 3000.0, device: str | torch.device | None = None) -> np.ndarray:
    """The full-size SSIM map (scipy 'reflect' border), as skimage's ``full=True`` returns."""
    check_window(ref.shape)
    device = pick_device(device) if not isinstance(device, torch.device) else device
    r = (WIN - 1) // 2
    x = symmetric_pad(prepare(pred, mask, low, high, device), r)
    y = symmetric_pad(prepare(ref, mask, low, high, device), r)
    return window_map(x, y, lambda stats: ssim_from_stats(stats, high - low)).cpu().numpy()


def edge_pad_to(t: torch.Tensor, size: int) -> torch.Tensor:
    """Edge-pad each axis to at least ``size``: (size - n) // 2 before, the rest after."""
    pads = []
    for n in reversed(t.shape):
        extra = max(size - n, 0)
        pads += [extra // 2, extra - extra // 2]
    if not any(pads):
        return t
    return torch.nn.functional.pad(t[None, None], pads, mode="replicate")[0, 0]


def downsample2(t: torch.Tensor) -> torch.Tensor:
    """2x2x2 box average in 'same' mode then stride 2, as ``fftconvolve(..., 'same')[::2]``.

    With an even kernel, scipy's 'same' output k averages input k-1 and k (input -1 is zero),
    so output m of the strided result averages inputs 2m - 1 and 2m along each axis.
    """
    for axis in range(3):
        m = (t.shape[axis] + 1) // 2
        even = [slice(None)] * 3
        odd = [slice(None)] * 3
        even[axis] = slice(0, None, 2)  # inputs 0, 2, 4, ...: m of them
        odd[axis] = slice(1, 2 * m - 2, 2)  # inputs 1, 3, ..., 2m - 3: m - 1 of them
        out = t[tuple(even)].clone()
        if m > 1:
            out.narrow(axis, 1, m - 1).add_(t[tuple(odd)])
        t = out.mul_(0.5)
    return t


def ms_ssim_masked(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, low: float = -1024.0,
                   high: float = 3000.0, device: str | torch.device | None = None,
                   weights: tuple[float, ...] = MS_WEIGHTS) -> tuple[float, list[float]]:
    """SynthRAD2025 masked MS-SSIM: ``prod_i clip(mean_mask (L C S)^w_i, 0, 1)``.

    Returns:
        (ms_ssim, per-scale masked means). NaN when the mask vanishes at some scale.
    """
    device = pick_device(device) if not isinstance(device, torch.device) else device
    mask_t = torch.as_tensor(np.ascontiguousarray(mask, dtype=bool))
    x = edge_pad_to(prepare(pred, mask_t, low, high, device), MS_MIN_SIZE)
    y = edge_pad_to(prepare(ref, mask_t, low, high, device), MS_MIN_SIZE)
    m = edge_pad_to(mask_t.to(torch.float32), MS_MIN_SIZE).numpy() > 0.5
    means = []
    for level, w in enumerate(weights):
        check_window(tuple(x.shape))
        value = masked_window_mean(lambda j, rows, cols, t=x: t[j, rows, cols],
                                   lambda j, rows, cols, t=y: t[j, rows, cols], m,
                                   lambda sums, w=w: lcs_from_sums5(sums, WIN, high - low, w),
                                   raw_sums=True)
        means.append(value)
        if level < len(weights) - 1:
            x, y, m = downsample2(x), downsample2(y), m[::2, ::2, ::2]
    if any(np.isnan(v) for v in means):
        return float("nan"), means
    return float(np.prod([np.clip(v, 0.0, 1.0) for v in means])), means
