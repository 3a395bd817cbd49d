"""Faithfulness: does removing (or keeping) what the map calls important change the decision?

Deletion and insertion (Petsiuk et al., RISE, 2018): rank pixels by saliency, then in ``steps``
equal chunks set the top pixels to a substrate (deletion) or restore them onto a substrate
(insertion), and record the target-class probability. The AUC is the mean height of the curve
over the fraction of pixels touched, in ``[0, 1]``. All ``N × (steps + 1)`` perturbed images go
through the model one step at a time for a chunk of ``batch_size`` images.

Batches are part of the result: float32 kernels (MKL on AVX-512 CPUs, say) may round an image's
logits differently depending on which images share its forward pass. So every forward here takes
the images at positions ``[s, s + batch_size)`` of the set it is given, each batch a fresh
allocation; the evaluation passes its ``EvalSettings.batch_size`` and a sharded run makes every
shard a whole number of batches, so a shard's forwards are exactly the one-pass run's forwards and
the two routes give bit-identical numbers by construction (tests/pipeline/test_stream_evaluate.py
checks this with a model whose outputs depend on the batch).

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
>>> imgs, sal = torch.rand(3, 1, 2, 2), np.random.default_rng(0).random((3, 2, 2))
>>> perturbation_curves(net, imgs, torch.tensor([0, 1, 0]), sal, steps=4).shape
(3, 5)
"""

from __future__ import annotations

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.probe import eval_mode
from qxai.seeding import per_item_uniform

SUBSTRATES = ("zero", "blur", "mean")


def substrate(images: torch.Tensor, kind: str, sigma: float | None = None) -> torch.Tensor:
    """What replaces removed pixels: ``zero``, a Gaussian ``blur`` (σ ≈ H/8) or the image ``mean``."""
    if kind == "zero":
        return torch.zeros_like(images)
    if kind == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()
    if kind == "blur":
        from scipy.ndimage import gaussian_filter

        s = sigma if sigma is not None else images.shape[-2] / 8
        blurred = gaussian_filter(images.detach().cpu().numpy(), sigma=(0, 0, s, s), mode="nearest")
        return torch.from_numpy(blurred).to(images)
    raise QxaiError(f"substrate must be one of {', '.join(SUBSTRATES)}, got '{kind}'")


def pixel_ranks(saliency: np.ndarray, seed: int = 0, ids: np.ndarray | None = None) -> np.ndarray:
    """``(N, H·W)`` rank of each pixel (0 = most salient); ties broken at random with ``seed``.

    Random tie-breaking keeps a constant map from being scored as a raster-order deletion. The
    tie-break draws of image ``i`` come from ``(seed, ids[i])`` (``ids``: the images' data-set
    indices; default ``0..N-1``), so a sharded evaluation ranks every image as one pass does.

    >>> pixel_ranks(np.array([[[0.1, 0.9], [0.5, 0.0]]])).tolist()
    [[2, 0, 1, 3]]
    """
    flat = np.asarray(saliency, dtype=np.float64).reshape(len(saliency), -1)
    ids = np.arange(len(flat)) if ids is None else ids
    tie = per_item_uniform(seed, "tie-break", ids, flat.shape[1])
    order = np.lexsort((tie, -flat), axis=-1)  # primary key: -saliency; secondary: random
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None, :].repeat(len(flat), 0), axis=1)
    return ranks


@torch.no_grad()
def class_probability(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, batch_size: int = 512
) -> np.ndarray:
    """``(N,)`` softmax probability of each image's target class, in batches of ``batch_size`` at
    positions ``[s, s + batch_size)`` (each copied to a fresh allocation, so that its memory layout
    cannot differ between two routes that give the same images)."""
    out = []
    for s in range(0, len(images), batch_size):
        probs = torch.softmax(model(images[s : s + batch_size].clone()).float(), dim=1)
        out.append(probs.gather(1, targets[s : s + batch_size].view(-1, 1))[:, 0])
    return torch.cat(out).cpu().numpy()


def perturbation_curves(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, saliency: np.ndarray, *,
    mode: str = "deletion", steps: int = 20, fill: str | None = None, seed: int = 0, batch_size: int = 512,
    ids: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """``(N, steps + 1)`` target probabilities as the top ``k/steps`` of pixels are deleted/inserted.

    ``fill``: the substrate (default ``zero`` for deletion, ``blur`` for insertion, as in RISE).
    """
    if mode not in ("deletion", "insertion"):
        raise QxaiError(f"mode must be 'deletion' or 'insertion', got '{mode}'")
    if steps < 1:
        raise QxaiError(f"steps must be at least 1, got {steps}")
    n, _, h, w = images.shape
    if np.shape(saliency) != (n, h, w):
        raise QxaiError(f"saliency has shape {np.shape(saliency)}, expected {(n, h, w)}")
    base = substrate(images, fill or ("zero" if mode == "deletion" else "blur"))
    ranks = torch.from_numpy(pixel_ranks(saliency, seed, ids)).view(n, 1, h, w)
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(int)
    probs = np.empty((n, steps + 1))
    with eval_mode(model):
        # one forward per (chunk of images, step): no per-pair gathers, memory = one chunk of images
        for s in range(0, n, batch_size):
            chunk = slice(s, s + batch_size)
            x, b, r, t = images[chunk], base[chunk], ranks[chunk], targets[chunk]
            for k, count in enumerate(counts):
                touched = r < int(count)
                batch = torch.where(touched, b, x) if mode == "deletion" else torch.where(touched, x, b)
                probs[chunk, k] = class_probability(model, batch, t, batch_size)
    return probs


def curve_auc(curves: np.ndarray) -> np.ndarray:
    """``(N,)`` area under each curve over the fraction of pixels ``[0, 1]`` (trapezoid rule)."""
    x = np.linspace(0.0, 1.0, curves.shape[1])
    return np.trapezoid(curves, x, axis=1)


def keep_top_drop(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, saliency: np.ndarray, *,
    keep: float = 0.2, fill: str = "zero", seed: int = 0, batch_size: int = 512,
    ids: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """``(N,)`` drop in % of the target probability when only the top ``keep`` of pixels remain:
    ``100 · max(0, p − p_kept) / p`` (the "average drop" of Grad-CAM++, per image)."""
    if not 0.0 < keep <= 1.0:
        raise QxaiError(f"keep must be a fraction in (0, 1], got {keep}")
    n, _, h, w = images.shape
    ranks = torch.from_numpy(pixel_ranks(saliency, seed, ids)).view(n, 1, h, w)
    kept = torch.where(ranks < round(keep * h * w), images, substrate(images, fill))
    with eval_mode(model):
        p = class_probability(model, images, targets, batch_size)
        p_kept = class_probability(model, kept, targets, batch_size)
    return 100.0 * np.maximum(0.0, p - p_kept) / np.maximum(p, 1e-12)


@torch.no_grad()
def top_removal_logit_drop(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, saliency: np.ndarray, *,
    remove: float = 0.2, fill: str = "zero", seed: int = 0, batch_size: int = 512,
    ids: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """``(N,)`` float64 drop of the target *logit* when the top ``remove`` of pixels are replaced by
    the substrate ``fill``: ``z(x) − z(x with its top pixels removed)`` (in logits, so it can be read
    against the causal map oracle's largest drop; batches as in :func:`class_probability`).

    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    >>> _ = net[1].weight.data.fill_(1.0)
    >>> top_removal_logit_drop(net, torch.ones(1, 1, 2, 2), torch.tensor([0]), np.ones((1, 2, 2)), remove=0.5)
    array([2.])
    """
    if not 0.0 < remove <= 1.0:
        raise QxaiError(f"remove must be a fraction in (0, 1], got {remove}")
    n, _, h, w = images.shape
    ranks = torch.from_numpy(pixel_ranks(saliency, seed, ids)).view(n, 1, h, w)
    removed = torch.where(ranks < round(remove * h * w), substrate(images, fill), images)
    out = np.empty(n, dtype=np.float64)
    with eval_mode(model):
        for s in range(0, n, batch_size):
            t = targets[s : s + batch_size].view(-1, 1)
            full = model(images[s : s + batch_size].clone()).double().gather(1, t)[:, 0]
            cut = model(removed[s : s + batch_size].clone()).double().gather(1, t)[:, 0]
            out[s : s + len(t)] = (full - cut).numpy()
    return out
