"""``cells``: procedurally generated blood-smear images, a stand-in for the NIH malaria data set.

Each image is one red blood cell (a pink disc with a pale centre and soft edges), seen in bright
field. Class ``parasitized`` cells carry 1–3 ring-form parasites (a thin dark-purple ring with a
chromatin dot); ``uninfected`` cells carry none. Both classes share the distractors that make the
real task non-trivial: platelets (purple blobs outside the cell or on its edge), stain specks
anywhere (also inside the cell), overlapping neighbour cells, an illumination gradient, stain and
colour variation, blur and sensor noise. Every image carries the ground-truth parasite mask.

Rendering follows Beer–Lambert absorption: every object adds an optical density per channel and
the image is ``background · illumination · exp(-Σ OD)``, so overlaps darken as in a real smear.
All random parameters are drawn up front from ``numpy_rng(seed, "cells")`` and the pixels are
rendered in vectorised chunks, so the output does not depend on the chunk size.

Images are quantised to 8 bits (as real photographs are) and cached as ``.npz`` under
``$QXAI_CACHE`` (default ``~/.cache/qxai``), keyed by ``(count, image_size, seed, GENERATOR_VERSION)``.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from qxai.data.base import ImageDataset
from qxai.errors import QxaiError
from qxai.io import cache_dir, write_npz
from qxai.seeding import numpy_rng

CLASS_NAMES = ["parasitized", "uninfected"]  # NIH order: label 0 carries parasites
GENERATOR_VERSION = 1  # bump whenever the pictures change, so that stale caches are not reused
MAX_PARASITES, MAX_NEIGHBOURS, MAX_PLATELETS, MAX_SPECKS = 3, 3, 2, 4
_CHUNK = 256

# Optical densities (−log transmittance) per RGB channel of the stains.
_OD_CELL = np.array([0.10, 0.62, 0.50]).astype(np.float32)  # haemoglobin: pink-red
_OD_PARASITE = np.array([0.95, 1.45, 0.55]).astype(np.float32)  # Giemsa-stained cytoplasm: purple
_OD_CHROMATIN = np.array([1.60, 2.20, 0.95]).astype(np.float32)  # chromatin dot: dark purple
_OD_PLATELET = np.array([0.85, 1.25, 0.50]).astype(
    np.float32
)  # platelets stain like parasites: the hard distractor
_OD_SPECK = np.array([0.9, 0.9, 0.75]).astype(np.float32)  # dust and stain precipitate: grey-blue


def load_cells(count: int = 2000, image_size: int = 48, seed: int = 0, cache: bool = True) -> ImageDataset:
    """The ``cells`` data set: ``count`` RGB images, half of them parasitized, with parasite masks.

    Returns an :class:`ImageDataset` with ``images`` ``(count, 3, S, S)`` float32 in ``[0, 1]``
    (multiples of 1/255), ``labels`` ``(count,)`` (0 = parasitized, 1 = uninfected), ``masks``
    ``(count, S, S)`` bool (all false for uninfected cells). Cached on disk unless ``cache=False``;
    a corrupt cache file is regenerated.

    >>> ds = load_cells(count=4, image_size=32, seed=0, cache=False)
    >>> ds.image_shape, ds.class_names, bool(ds.masks[ds.labels == 1].any())
    ((3, 32, 32), ['parasitized', 'uninfected'], False)
    """
    if int(count) < 2:
        raise QxaiError(f"cells count must be at least 2 (one per class), got {count}; pass a larger count")
    if int(image_size) < 16:
        raise QxaiError(f"cells image_size must be at least 16 pixels, got {image_size}; pass a larger size")
    count, image_size = int(count), int(image_size)
    key = hashlib.sha256(f"cells-{count}-{image_size}-{seed}-v{GENERATOR_VERSION}".encode()).hexdigest()[:16]
    path = cache_dir() / f"cells-{key}.npz"
    arrays = _read_cache(path, count, image_size) if cache else None
    if arrays is None:
        arrays = generate_cells(count, image_size, seed)
        if cache:
            write_npz(path, images=arrays[0], labels=arrays[1], masks=np.packbits(arrays[2], axis=-1))
    images, labels, masks = arrays
    return ImageDataset(
        torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0),
        torch.from_numpy(labels.astype(np.int64)),
        list(CLASS_NAMES),
        masks=torch.from_numpy(masks),
        name="cells",
    )


def _read_cache(path: Path, count: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The cached arrays, or ``None`` when the file is missing or unreadable (then it is rebuilt)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels, packed = z["images"], z["labels"], z["masks"]
        if images.dtype != np.uint8 or packed.dtype != np.uint8 or labels.dtype.kind not in "iu":
            raise ValueError("wrong dtypes")
        masks = np.unpackbits(packed, axis=-1, count=size).astype(bool)
        if (
            images.shape != (count, size, size, 3)
            or labels.shape != (count,)
            or masks.shape != (count, size, size)
        ):
            raise ValueError("wrong shapes")
        return images, labels, masks
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile) as err:
        warnings.warn(f"cells cache {path} is unreadable ({err}); regenerating it", stacklevel=3)
        return None


def generate_cells(count: int, image_size: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render the data set without touching the cache.

    Returns ``images`` ``(count, S, S, 3)`` uint8, ``labels`` ``(count,)`` int64 and ``masks``
    ``(count, S, S)`` bool.

    >>> im, y, m = generate_cells(6, 24, seed=1)
    >>> im.shape, im.dtype.name, int((y == 0).sum()), bool(m[y == 0].any(axis=(1, 2)).all())
    ((6, 24, 24, 3), 'uint8', 3, True)
    """
    rng = numpy_rng(seed, "cells")
    params = _draw_parameters(rng, count, float(image_size))
    images = np.empty((count, image_size, image_size, 3), dtype=np.uint8)
    masks = np.empty((count, image_size, image_size), dtype=bool)
    for start in range(0, count, _CHUNK):
        rows = slice(start, min(start + _CHUNK, count))
        # float32 halves the rendering time; the 8-bit output hides the difference.
        chunk = {k: v[rows].astype(np.float32) if v.dtype.kind == "f" else v[rows] for k, v in params.items()}
        images[rows], masks[rows] = _render(chunk, image_size)
    return images, params["label"], masks


def _draw_parameters(rng: np.random.Generator, n: int, s: float) -> dict[str, np.ndarray]:
    """Every random number of every image, drawn up front (lengths in pixels)."""
    u = rng.uniform
    label = rng.permutation(np.arange(n) % 2)  # balanced: counts differ by at most one
    p: dict[str, np.ndarray] = {"label": label.astype(np.int64)}
    # The main cell: an ellipse near the centre with a pale centre (the biconcave disc).
    p["cx"], p["cy"] = s / 2 + rng.normal(0, 0.04 * s, n), s / 2 + rng.normal(0, 0.04 * s, n)
    p["radius"], p["aspect"], p["angle"] = u(0.29, 0.37, n) * s, u(0.82, 1.0, n), u(0, np.pi, n)
    p["pallor"], p["cell_density"] = u(0.25, 0.6, n), u(0.6, 1.15, n)
    # Neighbour cells cut by the image border, overlapping the main cell a little or not at all.
    p["nb_on"] = rng.random((n, MAX_NEIGHBOURS)) < 0.45
    k = (n, MAX_NEIGHBOURS)
    nb_dir = u(0, 2 * np.pi, k)
    p["nb_r"] = u(0.8, 1.05, k) * p["radius"][:, None]
    nb_dist = (p["radius"][:, None] + p["nb_r"]) * u(0.85, 1.15, k)
    p["nb_x"] = p["cx"][:, None] + nb_dist * np.cos(nb_dir)
    p["nb_y"] = p["cy"][:, None] + nb_dist * np.sin(nb_dir)
    # Parasites (label 0 only): 1 ring (70 %), 2 (22 %) or 3 (8 %), inside the cell, some faint.
    r_count = rng.random(n)
    n_par = 1 + (r_count > 0.70) + (r_count > 0.92)
    p["par_on"] = (np.arange(MAX_PARASITES)[None, :] < n_par[:, None]) & (label[:, None] == 0)
    k = (n, MAX_PARASITES)
    where_r = np.sqrt(rng.random(k)) * 0.62 * p["radius"][:, None]  # uniform over the inner disc
    where_a = u(0, 2 * np.pi, k)
    p["par_x"] = p["cx"][:, None] + where_r * np.cos(where_a)
    p["par_y"] = p["cy"][:, None] + where_r * np.sin(where_a)
    p["par_r"], p["par_w"] = u(0.05, 0.085, k) * s, u(0.014, 0.022, k) * s
    p["par_strength"] = u(0.5, 1.0, k)  # below 0.5 too many rings vanish in blur and noise
    p["dot_angle"], p["dot_sigma"] = u(0, 2 * np.pi, k), u(0.018, 0.028, k) * s
    # Platelets (both classes): purple blobs outside the cell or on its edge.
    p["plt_on"] = rng.random((n, MAX_PLATELETS)) < 0.35
    k = (n, MAX_PLATELETS)
    plt_a, plt_d = u(0, 2 * np.pi, k), u(0.95, 1.45, k) * p["radius"][:, None]
    p["plt_x"] = p["cx"][:, None] + plt_d * np.cos(plt_a)
    p["plt_y"] = p["cy"][:, None] + plt_d * np.sin(plt_a)
    p["plt_sigma"], p["plt_strength"] = u(0.03, 0.055, k) * s, u(0.5, 1.0, k)
    # Stain specks (both classes): tiny grey dots anywhere, also on the cell.
    p["spk_on"] = rng.random((n, MAX_SPECKS)) < 0.3
    p["spk_x"], p["spk_y"] = u(0, s, (n, MAX_SPECKS)), u(0, s, (n, MAX_SPECKS))
    p["spk_sigma"], p["spk_strength"] = u(0.008, 0.015, (n, MAX_SPECKS)) * s, u(0.3, 0.9, (n, MAX_SPECKS))
    # Acquisition: background tint, stain variation, illumination gradient, blur, noise.
    p["bg"] = np.clip(np.array([0.93, 0.88, 0.86]) + rng.normal(0, 0.025, (n, 3)), 0, 1)
    p["stain"] = np.exp(rng.normal(0, 0.12, (n, 3)))  # multiplies every optical density per channel
    p["grad_angle"], p["grad"] = u(0, 2 * np.pi, n), u(0.0, 0.22, n)
    p["blur"], p["noise"] = u(0.3, 1.0, n) * s / 48, u(0.005, 0.03, n)
    p["noise_seed"] = rng.integers(0, 2**63, n)
    return p


def _gauss(d2: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * d2 / sigma**2)


def _render(p: dict[str, np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of one chunk: ``(n, S, S, 3)`` uint8 images and ``(n, S, S)`` bool masks."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    y, x = yy[None, None], xx[None, None]  # (1, 1, S, S) against (n, K, 1, 1) parameters

    def col(name: str) -> np.ndarray:  # a per-object parameter (n, K) → (n, K, 1, 1)
        return p[name][:, :, None, None]

    def disc(cx, cy, r, aspect, angle, pallor):  # type: ignore[no-untyped-def]
        """Optical-density profile of a red cell: soft-edged ellipse, pale centre (n, K, S, S)."""
        c, s_ = np.cos(angle), np.sin(angle)
        u_, v_ = (x - cx) * c + (y - cy) * s_, (y - cy) * c - (x - cx) * s_
        d = np.sqrt((u_ / r) ** 2 + (v_ / (r * aspect)) ** 2)
        body = 1.0 / (1.0 + np.exp(np.clip((d - 1.0) * r / 0.7, -50, 50)))  # ~0.7 px soft edge
        return body * (1.0 - pallor * np.exp(-((d / 0.5) ** 2)))

    def one(name: str) -> np.ndarray:  # a per-image parameter (n,) → (n, 1, 1, 1)
        return p[name][:, None, None, None]

    main = disc(one("cx"), one("cy"), one("radius"), one("aspect"), one("angle"), one("pallor"))[:, 0]
    nb_shape = disc(col("nb_x"), col("nb_y"), col("nb_r"), 1.0, 0.0, 0.6 * one("pallor"))
    cells = main * p["cell_density"][:, None, None] + (nb_shape * col("nb_on")).sum(1) * 0.9

    # Ring parasites: a thin ring plus a chromatin dot on it. The mask is the parasite's extent.
    dist = np.sqrt((x - col("par_x")) ** 2 + (y - col("par_y")) ** 2)
    ring = np.exp(-0.5 * ((dist - col("par_r")) / col("par_w")) ** 2)
    dot_x = col("par_x") + col("par_r") * np.cos(col("dot_angle"))
    dot_y = col("par_y") + col("par_r") * np.sin(col("dot_angle"))
    dot = _gauss((x - dot_x) ** 2 + (y - dot_y) ** 2, col("dot_sigma"))
    on = col("par_on") * col("par_strength")
    parasite, chromatin = (ring * on).sum(1), (dot * on).sum(1)
    mask = ((dist <= col("par_r") + 1.5 * col("par_w")) | (dot > 0.3)) & col("par_on").astype(bool)
    mask = mask.any(1)

    platelet = (
        _gauss((x - col("plt_x")) ** 2 + (y - col("plt_y")) ** 2, col("plt_sigma"))
        * col("plt_on")
        * col("plt_strength")
    ).sum(1)
    speck = (
        _gauss((x - col("spk_x")) ** 2 + (y - col("spk_y")) ** 2, col("spk_sigma"))
        * col("spk_on")
        * col("spk_strength")
    ).sum(1)

    od = (
        cells[..., None] * _OD_CELL
        + parasite[..., None] * _OD_PARASITE
        + chromatin[..., None] * _OD_CHROMATIN
        + platelet[..., None] * _OD_PLATELET
        + speck[..., None] * _OD_SPECK
    ) * p["stain"][:, None, None, :]
    ramp = (
        (xx - size / 2) * np.cos(p["grad_angle"])[:, None, None]
        + (yy - size / 2) * np.sin(p["grad_angle"])[:, None, None]
    ) / size
    illum = 1.0 + p["grad"][:, None, None] * ramp
    img = p["bg"][:, None, None, :] * illum[..., None] * np.exp(-od)
    img = _blur(img, p["blur"])
    # Per-image noise streams drawn from per-image seeds: the result does not depend on chunking.
    noise = np.stack([np.random.default_rng(int(k)).standard_normal(img.shape[1:]) for k in p["noise_seed"]])
    img = img + p["noise"][:, None, None, None] * noise
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8), mask


def _blur(img: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur of ``img`` (n, S, S, 3) with one ``sigma`` (n,) per image."""
    radius = max(1, int(np.ceil(3 * sigma.max())))
    taps = np.arange(-radius, radius + 1, dtype=np.float32)
    w = np.exp(-0.5 * (taps[None, :] / sigma[:, None]) ** 2)
    w /= w.sum(1, keepdims=True)
    size = img.shape[1]
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded = np.pad(img, pad, mode="reflect")
        out = np.zeros_like(img)
        for i in range(len(taps)):
            window = padded[:, i : i + size] if axis == 1 else padded[:, :, i : i + size]
            out += w[:, i, None, None, None] * window
        img = out
    return img
