"""Metrics of a generated SET of slices against a real set (Pan et al. 2023, Sec. 2.4):
FID and Inception Score (optional: they need the user's Inception-v3 weights), FDS and DS.

- FID (Heusel et al. 2017): Frechet distance between Gaussians fitted to pool3 features,
  ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)).
- IS (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), mean and std over splits.
- FDS (feature distribution similarity): a 2-D t-SNE embedding of the real and generated
  images together, a Gaussian fitted to each set's points, KL(real || generated).
- DS (diversity similarity): for every image its highest SSIM to another image of the same
  set; KL(real || generated) between Gaussians fitted to the two sets' nearest-SSIM values.
  Identical sets give 0 for both; lower is more similar.

Images enter as float arrays (N, H, W) in [0, 1]; :func:`load_slices` makes them from
NIfTI files or a dataset folder (CT clipped to an HU window, MR scaled per image).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medxlate.errors import InputError

#: Metric names as the report and --fail-if spell them.
METRICS = ("fid", "is", "is_std", "fds", "ds")
SSIM_WIN, SSIM_K1, SSIM_K2 = 7, 0.01, 0.03


# -- closed forms -----------------------------------------------------------------------------
def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2 (real and
    non-negative for PSD S1, S2: S1 S2 is similar to S1^(1/2) S2 S1^(1/2)), which avoids the
    complex round-off of a general matrix square root.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    eig = np.linalg.eigvals(s1 @ s2)
    tr_sqrt = float(np.sqrt(np.clip(eig.real, 0.0, None)).sum())
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def gaussian_kl(mu0, sigma0, mu1, sigma1) -> float:
    """KL(N(mu0, sigma0) || N(mu1, sigma1)) in nats (k-dimensional closed form)."""
    mu0, mu1 = np.atleast_1d(mu0).astype(np.float64), np.atleast_1d(mu1).astype(np.float64)
    s0, s1 = np.atleast_2d(sigma0).astype(np.float64), np.atleast_2d(sigma1).astype(np.float64)
    k = mu0.shape[0]
    inv1 = np.linalg.inv(s1)
    d = mu1 - mu0
    _, logdet0 = np.linalg.slogdet(s0)
    _, logdet1 = np.linalg.slogdet(s1)
    return float(0.5 * (np.trace(inv1 @ s0) + d @ inv1 @ d - k + logdet1 - logdet0))


def fit_gaussian(x: np.ndarray, floor: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof=1) of rows of ``x``; ``floor`` is added to the diagonal so a
    set of identical points still has a density."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    cov = np.atleast_2d(np.cov(x, rowvar=False)) + floor * np.eye(x.shape[1])
    return x.mean(axis=0), cov


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two feature sets (N, D) (sample covariance, ddof=1, as pytorch-fid)."""
    mu_r, s_r = np.mean(real, 0), np.cov(real, rowvar=False)
    mu_g, s_g = np.mean(fake, 0), np.cov(fake, rowvar=False)
    return frechet_distance(mu_r, s_r, mu_g, s_g)


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over ``splits`` equal parts of exp(E KL(p(y|x) || p(y)))."""
    logits = np.asarray(logits, np.float64)
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    scores = []
    for part in np.array_split(p, max(1, min(splits, len(p)))):
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-30) - np.log(py + 1e-30))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# -- FDS ------------------------------------------------------------------------------------
def tsne_embedding(images: np.ndarray, seed: int = 0, pca_dims: int = 50) -> np.ndarray:
    """2-D t-SNE of flattened images (N, H, W) -> (N, 2).

    scikit-learn's ``sklearn.manifold.TSNE`` (Barnes-Hut, van der Maaten 2014) is the t-SNE
    used here: it is maintained, tested and seedable (``random_state``), runs on the CPU with
    no extra dependency (scikit-learn is already required), and its PCA initialisation makes
    the embedding stable across runs. As usual for t-SNE, the pixels are first reduced to at
    most 50 principal components; the perplexity is 30, or (N - 1) / 3 for small sets.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(images, np.float64).reshape(len(images), -1)
    dims = min(pca_dims, x.shape[0] - 1, x.shape[1])
    if dims < x.shape[1]:
        x = PCA(n_components=dims, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, max(1.0, (len(x) - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                method="barnes_hut").fit_transform(x)


def fds(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> float:
    """KL(real || generated) between Gaussians fitted to the joint t-SNE embedding."""
    emb = tsne_embedding(np.concatenate([real, fake]), seed)
    return gaussian_kl(*fit_gaussian(emb[:len(real)]), *fit_gaussian(emb[len(real):]))


# -- DS -------------------------------------------------------------------------------------
def pairwise_ssim(images: np.ndarray, data_range: float = 1.0, chunk: int = 64) -> np.ndarray:
    """(N, N) SSIM between every two images (N, H, W): a uniform 7x7 window with sample
    covariance over its valid positions (scikit-image's ``structural_similarity`` defaults,
    Wang et al. 2004), averaged over the map; the diagonal is 1."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.asarray(images, np.float64))[:, None]
    n, w = len(x), SSIM_WIN
    cov_norm = w * w / (w * w - 1.0)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2

    def mean(t):
        return F.avg_pool2d(t, w, stride=1)

    mu = mean(x)
    var = (mean(x * x) - mu * mu) * cov_norm
    out = np.empty((n, n))
    for start in range(0, n, chunk):
        a = slice(start, min(n, start + chunk))
        xa, mua, vara = x[a][:, None], mu[a][:, None], var[a][:, None]      # (c, 1, 1, h, w)
        cross = torch.stack([mean(xa[:, 0] * x[j:j + 1]) for j in range(n)], dim=1)
        cov = (cross - mua * mu[None]) * cov_norm
        num = (2 * mua * mu[None] + c1) * (2 * cov + c2)
        den = (mua ** 2 + mu[None] ** 2 + c1) * (vara + var[None] + c2)
        out[a] = (num / den).mean(dim=(-1, -2, -3)).numpy()
    return out


def nearest_ssim(images: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """For every image, its highest SSIM to ANOTHER image of the same set (N,)."""
    if len(images) < 2:
        raise InputError("diversity needs at least two images per set")
    s = pairwise_ssim(images, data_range)
    np.fill_diagonal(s, -np.inf)
    return s.max(axis=1)


def ds(real: np.ndarray, fake: np.ndarray) -> float:
    """KL(real || generated) between 1-D Gaussians fitted to the nearest-SSIM values."""
    return gaussian_kl(*fit_gaussian(nearest_ssim(real)), *fit_gaussian(nearest_ssim(fake)))


# -- inputs ---------------------------------------------------------------------------------
@dataclass
class SliceSet:
    """Images in [0, 1] (N, H, W) and where they came from."""

    images: np.ndarray
    source: str
    files: int


def to_unit(values: np.ndarray, modality: str, hu_range: tuple[float, float]) -> np.ndarray:
    """CT: clip to ``hu_range`` and scale to [0, 1]; MR: each image's 0.5/99.5 percentiles."""
    v = np.asarray(values, np.float64)
    if modality == "CT":
        lo, hi = hu_range
        return np.clip((v - lo) / (hi - lo), 0.0, 1.0)
    lo = np.percentile(v, 0.5, axis=(-2, -1), keepdims=True)
    hi = np.percentile(v, 99.5, axis=(-2, -1), keepdims=True)
    return np.clip((v - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)


def _dataset_slices(root: Path, modality: str, split: str | None) -> np.ndarray:
    from medxlate.preprocess.dataset import load_dataset
    from medxlate.intensity import denormalise_ct

    ds_ = load_dataset(root)
    key = "ct" if modality == "CT" else "mr"
    splits = [split] if split else ["test"]
    subjects = [s for sp in splits for s in ds_.subjects(sp) if key in s["modalities"]]
    if not subjects:
        raise InputError(f"{root}: no {key.upper()} subjects in split {splits[0]!r}")
    out = []
    for s in subjects:
        shard = ds_.shard(s["id"])
        keep = np.flatnonzero(np.asarray(shard["keep"]))
        x = np.asarray(shard[key][keep], np.float32)
        out.append(denormalise_ct(x, ds_.info["normalisation"]["ct"]) if key == "ct" else x)
    return np.concatenate(out)


def _file_slices(path: Path, min_foreground: float) -> tuple[np.ndarray, int]:
    """Axial slices of every NIfTI/MHA file under ``path`` (a 1-slice volume is one slice);
    slices of 3-D volumes with less than ``min_foreground`` of non-background voxels are
    dropped (empty slices above and below the body)."""
    from medxlate.io import read_volume

    files = ([path] if path.is_file() else
             sorted(p for p in path.rglob("*") if p.name.endswith((".nii", ".nii.gz", ".mha"))))
    if not files:
        raise InputError(f"{path}: no NIfTI/MHA images found")
    out = []
    for f in files:
        a = read_volume(f).array
        slices = np.moveaxis(a, 2, 0)
        if len(slices) > 1:
            bg = slices.min()
            fg = (slices > bg + 1e-3 * max(1.0, float(slices.max() - bg))).mean(axis=(1, 2))
            slices = slices[fg >= min_foreground]
        out.extend(slices)
    shapes = {s.shape for s in out}
    if len(shapes) != 1:
        raise InputError(f"{path}: slices of different sizes {sorted(shapes)[:3]}; "
                         "evaluate sets of equal slice size")
    return np.stack(out), len(files)


def load_slices(path: Path | str, modality: str = "CT", hu_range=(-1024.0, 3000.0),
                split: str | None = None, min_foreground: float = 0.05) -> SliceSet:
    """A set of slices in [0, 1] from a folder/file of images or a dataset folder."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: not found")
    if path.is_dir() and (path / "dataset.json").is_file():
        raw, files = _dataset_slices(path, modality, split), 0
    else:
        raw, files = _file_slices(path, min_foreground)
    return SliceSet(to_unit(raw, modality, hu_range).astype(np.float32), str(path), files)


def match_size(images: np.ndarray, shape: tuple[int, int], seed: int = 0
               ) -> tuple[np.ndarray, str]:
    """Bring real slices (N, H, W) to the generated ``shape``: unchanged when equal; one
    seeded random crop per slice when larger in both dimensions (a generator trained on
    random crops at the dataset's spacing draws crops at that spacing, so resizing would
    compare different pixel sizes); a bilinear resize otherwise. Returns (images, how)."""
    h, w = int(shape[0]), int(shape[1])
    if images.shape[1:] == (h, w):
        return images, "none"
    if images.shape[1] >= h and images.shape[2] >= w:
        rng = np.random.default_rng(seed)
        ys = rng.integers(0, images.shape[1] - h + 1, len(images))
        xs = rng.integers(0, images.shape[2] - w + 1, len(images))
        return np.stack([im[y:y + h, x:x + w] for im, y, x in zip(images, ys, xs)]), "random_crop"
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(images, dtype=torch.float32)[:, None]
    return (F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[:, 0].numpy(),
            "resized")


def distribution_metrics(real: np.ndarray, fake: np.ndarray, inception: Path | None = None,
                         seed: int = 0, device: str = "cpu",
                         is_splits: int = 10) -> dict[str, Any]:
    """Every metric of a generated set ``fake`` against ``real`` (both (N, H, W) in [0, 1])."""
    metrics: dict[str, Any] = {"fds": fds(real, fake, seed), "ds": ds(real, fake)}
    if inception is not None:
        from medxlate.evaluate.inception import inception_outputs, load_inception

        net = load_inception(inception, device)
        f_real, _ = inception_outputs(net, real, device=device)
        f_fake, logits = inception_outputs(net, fake, device=device)
        metrics["fid"] = fid_from_features(f_real.numpy(), f_fake.numpy())
        metrics["is"], metrics["is_std"] = inception_score(logits.numpy(), is_splits)
    return metrics


def run_distribution(pred: Path, ref: Path, modality: str = "CT", hu_range=(-1024.0, 3000.0),
                     inception: Path | None = None, seed: int = 0, device: str = "cpu",
                     split: str | None = None) -> dict[str, Any]:
    """Load both sets, bring the real slices to the generated size, compute the metrics;
    returns the JSON report."""
    fake = load_slices(pred, modality, hu_range, split)
    real = load_slices(ref, modality, hu_range, split)
    real_images, matched = match_size(real.images, fake.images.shape[1:], seed)
    metrics = distribution_metrics(real_images, fake.images, inception, seed, device)
    return {
        "format": "medxlate-evaluate-distribution/1",
        "modality": modality,
        "generated": {"path": fake.source, "slices": len(fake.images),
                      "shape": list(fake.images.shape[1:])},
        "reference": {"path": real.source, "slices": len(real.images),
                      "shape": list(real.images.shape[1:]),
                      "matched_to_generated": matched},
        "settings": {"hu_range": list(hu_range) if modality == "CT" else None,
                     "seed": seed, "inception": str(inception) if inception else None,
                     "split": split or "test"},
        "definitions": {
            "fid": "Frechet distance of Inception-v3 pool3 (2048-d) Gaussians, images in "
                   "[0,1] resized to 299 (bilinear), grey repeated to RGB (pytorch-fid)",
            "is": "exp(E KL(p(y|x)||p(y))) over softmax(pool3 @ W) of the generated set, "
                  "mean and std over 10 splits",
            "fds": "KL(real||generated) of Gaussians fitted to a joint 2-D t-SNE "
                   "(scikit-learn, PCA-50 first, seeded)",
            "ds": "KL(real||generated) of Gaussians fitted to each image's highest SSIM to "
                  "another image of its set (7x7 uniform window, data range 1)",
        },
        "metrics": metrics,
    }


def csv_row(report: dict[str, Any]) -> str:
    """Header and one row: generated, reference, then every computed metric."""
    names = [m for m in METRICS if m in report["metrics"]]
    head = ",".join(["generated", "reference", "n_generated", "n_reference", *names])
    row = ",".join([json.dumps(report["generated"]["path"]), json.dumps(report["reference"]["path"]),
                    str(report["generated"]["slices"]), str(report["reference"]["slices"]),
                    *[f"{report['metrics'][m]:.6g}" for m in names]])
    return head + "\n" + row + "\n"
