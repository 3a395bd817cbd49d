"""``planted``: images whose class evidence is known by construction (the planted benchmark).

Every image is a gray ``1×S×S`` canvas (background 0.5, Gaussian noise) cut into ``8×8`` cells;
each object is one ``7×7`` ±1 pattern rendered as ``0.5 + 0.4·contrast·pattern`` into a random
cell (jitter 0–1 px), so objects never overlap. Class ``c`` (of :data:`NUM_CLASSES`) is carried by
its two **parts** (patterns ``PARTS[c, 0]`` and ``PARTS[c, 1]``), both present in every image of
the class; the **distractors** (:data:`NUM_DISTRACTORS` patterns) appear in every class alike.
The mask of an image is the footprint of its own class's two parts.

The patterns are fixed — drawn once from seed 0 and thinned greedily so that no two of them
correlate above :data:`MAX_CROSS` at any shift — and are part of the benchmark's definition (the
``planted-cnn`` model's detectors are these patterns, :mod:`qxai.models.planted`). The loader's
``seed`` draws everything else: labels, cells, jitter, contrasts and noise.

``difficulty`` (:data:`DIFFICULTIES`) selects the variant:

=================  ===================================================================================
``easy``           the two class parts (contrast 0.8–1) and 2 distractors (0.8–1), noise σ = 0.05
``distractors``    6 distractors, brighter than the evidence (contrast 0.8–1.3), noise σ = 0.1
``overlap``        as ``easy`` plus one part of another class (contrast 0.8–1): classes share evidence
``redundant``      the images of ``easy``; the model has copies of designated maps (see the model)
``partial``        as ``easy``, but half the images show only one of their class's two parts (which one
                   at random): the evidence differs per image within a class, so a selection that is
                   the same for every image of a class (a class lookup) keeps a part that is not there
=================  ===================================================================================

The truth of an image is its class's designated maps whose part it shows (a map of an absent part is
zero on it and carries nothing, :func:`qxai.evaluate.planted.planted_scores`); the mask is the
footprint of the parts it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from qxai.data.base import ImageDataset
from qxai.errors import QxaiError, unknown_name
from qxai.seeding import numpy_rng

NUM_CLASSES = 4
PARTS_PER_CLASS = 2
NUM_DISTRACTORS = 8
PATTERN = 7  # pattern side (pixels)
CELL = 8  # cell side: one object per cell
AMPLITUDE = 0.4  # a pattern pixel is 0.5 ± AMPLITUDE·contrast
MAX_CROSS = 15  # largest |correlation| of two patterns at any shift (a pattern with itself: 49)
CLASS_NAMES = [f"class-{c}" for c in range(NUM_CLASSES)]


@dataclass(frozen=True)
class Variant:
    """What one difficulty draws per image."""

    distractors: int
    distractor_contrast: tuple[float, float]
    noise: float
    shared_parts: int = 0  # parts of another class added to each image
    one_part: float = 0.0  # share of images that show only one of their class's two parts


DIFFICULTIES: dict[str, Variant] = {
    "easy": Variant(2, (0.8, 1.0), 0.05),
    "distractors": Variant(6, (0.8, 1.3), 0.10),
    "overlap": Variant(2, (0.8, 1.0), 0.05, shared_parts=1),
    "redundant": Variant(2, (0.8, 1.0), 0.05),
    "partial": Variant(2, (0.8, 1.0), 0.05, one_part=0.5),
}
CLASS_CONTRAST = (0.8, 1.0)


def check_difficulty(difficulty: str) -> Variant:
    """The variant named ``difficulty``; an unknown name is a one-line :class:`QxaiError`.

    >>> check_difficulty("easy").distractors
    2
    """
    if difficulty not in DIFFICULTIES:
        raise unknown_name("planted difficulty", difficulty, DIFFICULTIES)
    return DIFFICULTIES[difficulty]


@lru_cache(maxsize=1)
def planted_patterns() -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's fixed patterns: ``parts`` ``(NUM_CLASSES, 2, 7, 7)`` and ``distractors``
    ``(NUM_DISTRACTORS, 7, 7)``, float32 ±1, pairwise |correlation| ≤ :data:`MAX_CROSS` at every shift.

    >>> parts, distractors = planted_patterns()
    >>> parts.shape, distractors.shape, float(abs(parts[0, 0]).sum())
    ((4, 2, 7, 7), (8, 7, 7), 49.0)
    """
    from scipy.signal import correlate2d

    rng = numpy_rng(0, "planted-patterns")
    wanted = NUM_CLASSES * PARTS_PER_CLASS + NUM_DISTRACTORS
    chosen: list[np.ndarray] = []
    for _ in range(20_000):
        p = rng.choice([-1.0, 1.0], size=(PATTERN, PATTERN))
        if abs(p.sum()) > 3:  # near zero mean: flat background gives no response
            continue
        auto = correlate2d(p, p, mode="full")
        auto[PATTERN - 1, PATTERN - 1] = 0
        if np.abs(auto).max() > MAX_CROSS:
            continue
        if all(np.abs(correlate2d(p, q, mode="full")).max() <= MAX_CROSS for q in chosen):
            chosen.append(p)
            if len(chosen) == wanted:
                break
    if len(chosen) < wanted:  # pragma: no cover - the fixed seed finds them
        raise QxaiError("could not draw the planted patterns; raise MAX_CROSS")
    stack = np.stack(chosen).astype(np.float32)
    parts = stack[: NUM_CLASSES * PARTS_PER_CLASS].reshape(NUM_CLASSES, PARTS_PER_CLASS, PATTERN, PATTERN)
    return parts, stack[NUM_CLASSES * PARTS_PER_CLASS :]


def generate_planted(
    count: int, image_size: int, difficulty: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render the data set: ``images`` ``(count, S, S)`` float32 in ``[0, 1]``, ``labels``
    ``(count,)`` int64 (balanced), ``masks`` ``(count, S, S)`` bool (the own class's parts shown).

    >>> im, y, m = generate_planted(8, 32, "easy", seed=0)
    >>> im.shape, np.bincount(y).tolist(), int(m[0].sum())
    ((8, 32, 32), [2, 2, 2, 2], 98)
    """
    images, labels, masks, _ = render_planted(count, image_size, difficulty, seed)
    return images, labels, masks


def render_planted(
    count: int, image_size: int, difficulty: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`generate_planted` and ``shown`` ``(count, 2)`` bool: which of its class's two parts
    each image shows (both, except in ``partial``).

    >>> _, _, _, shown = render_planted(400, 32, "partial", seed=0)
    >>> bool(shown.any(axis=1).all()), round(float((~shown).any(axis=1).mean()), 1)
    (True, 0.5)
    """
    variant = check_difficulty(difficulty)
    side = image_size // CELL
    objects = PARTS_PER_CLASS + variant.shared_parts + variant.distractors
    if side * side < objects:
        raise QxaiError(
            f"planted image_size {image_size} holds {side * side} cells, {difficulty} needs {objects}; "
            f"pass image_size ≥ {CELL * int(np.ceil(np.sqrt(objects)))}"
        )
    # redundant draws the images of easy (its difficulty is in the model)
    rng = numpy_rng(seed, "planted", "easy" if difficulty == "redundant" else difficulty)
    parts, distractors = planted_patterns()
    labels = rng.permutation(np.arange(count) % NUM_CLASSES).astype(np.int64)
    cells = np.argsort(rng.random((count, side * side)), axis=1)[:, :objects]  # distinct cells per image
    jitter = rng.integers(0, CELL - PATTERN + 1, size=(count, objects, 2))
    ys = (cells // side) * CELL + jitter[..., 0]
    xs = (cells % side) * CELL + jitter[..., 1]
    lo, hi = CLASS_CONTRAST
    contrast = np.concatenate([
        rng.uniform(lo, hi, (count, PARTS_PER_CLASS + variant.shared_parts)),
        rng.uniform(*variant.distractor_contrast, (count, variant.distractors)),
    ], axis=1)  # fmt: skip
    others = (labels + rng.integers(1, NUM_CLASSES, count)) % NUM_CLASSES  # a class ≠ the label
    other_part = rng.integers(0, PARTS_PER_CLASS, count)
    which = rng.integers(0, NUM_DISTRACTORS, (count, max(variant.distractors, 1)))
    shown = np.ones((count, PARTS_PER_CLASS), dtype=bool)
    if variant.one_part:  # drawn last, so the other difficulties' draws are unchanged
        single = rng.random(count) < variant.one_part
        shown[np.flatnonzero(single), rng.integers(0, PARTS_PER_CLASS, int(single.sum()))] = False
    images = 0.5 + variant.noise * rng.standard_normal((count, image_size, image_size))
    masks = np.zeros((count, image_size, image_size), dtype=bool)
    n = np.arange(count)[:, None, None]
    offsets = np.arange(PATTERN)
    for j in range(objects):
        if j < PARTS_PER_CLASS:
            pattern = parts[labels, j]
        elif j < PARTS_PER_CLASS + variant.shared_parts:
            pattern = parts[others, other_part]
        else:
            pattern = distractors[which[:, j - PARTS_PER_CLASS - variant.shared_parts]]
        rows = (ys[:, j, None] + offsets)[:, :, None]
        cols = (xs[:, j, None] + offsets)[:, None, :]
        on = shown[:, j, None, None] if j < PARTS_PER_CLASS else 1.0  # a part left out: no pattern
        images[n, rows, cols] += AMPLITUDE * contrast[:, j, None, None] * pattern * on
        if j < PARTS_PER_CLASS:
            masks[n, rows, cols] = shown[:, j, None, None]
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels, masks, shown


def load_planted(
    count: int = 2000, image_size: int = 32, difficulty: str = "easy", seed: int = 0
) -> ImageDataset:
    """The ``planted`` data set (see the module docstring): ``images`` ``(count, 1, S, S)``,
    ``labels`` ``(count,)``, ``masks`` ``(count, S, S)`` of the class evidence. Generated in well
    under a second; not cached.

    >>> ds = load_planted(count=8, difficulty="overlap", seed=1)
    >>> ds.image_shape, ds.class_names[:2], bool(ds.masks.any(dim=(1, 2)).all())
    ((1, 32, 32), ['class-0', 'class-1'], True)
    """
    check_difficulty(difficulty)
    if int(count) < NUM_CLASSES:
        raise QxaiError(f"planted count must be at least {NUM_CLASSES} (one per class), got {count}")
    images, labels, masks = generate_planted(int(count), int(image_size), difficulty, seed)
    return ImageDataset(
        torch.from_numpy(images)[:, None], torch.from_numpy(labels), list(CLASS_NAMES),
        masks=torch.from_numpy(masks), name="planted",
    )  # fmt: skip
