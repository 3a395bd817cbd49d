"""The head-ablation oracle: does zeroing the heads QA selects lower the class logit more than zeroing
as many heads chosen by gradient weight, or at random?

:func:`head_ablation` zeroes given heads per image (their outputs, before the heads are merged, via
the gates of :class:`qxai.explain.heads.HeadHooks`) and returns the drop of the target logit.
:func:`head_causal_comparison` runs ``qa-heads`` on a batch and, per image with a non-empty selection
``S``, ablates ``S``, the top-``|S|`` heads by importance ``α`` (the gradient-weight choice of the
same size) and ``|S|`` heads drawn at random (image ``i``'s draw from ``(seed, "head-random", ids[i])``,
so it does not depend on which other images share the batch); it reports the mean drop of each with
bootstrap 95 % intervals (:mod:`qxai.evaluate.statistics`) and the paired differences QA − gradient
weight and QA − random with their intervals and a verdict: ``"qa"`` when the interval lies above 0,
the other when below, ``"tie"`` when it contains 0 (the repo's tie rule).

>>> from qxai.models.vit import ViTTiny
>>> torch.manual_seed(0) and None
>>> net = ViTTiny(1, 3, (8, 8), patch_size=2, dim=8, depth=1, heads=2).eval()
>>> x = torch.rand(2, 1, 8, 8)
>>> drop = head_ablation(net, x, 0, [[], [0, 1]])
>>> float(drop[0]), drop.shape
(0.0, (2,))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from qxai.errors import QxaiError
from qxai.evaluate.statistics import MIN_VALUES, bootstrap_interval, paired_test
from qxai.explain.heads import HeadHooks, QAHeadsExplainer, select_sites
from qxai.explain.quality import diagnose
from qxai.probe import eval_mode, target_classes
from qxai.seeding import numpy_rng

#: The stream the random heads are drawn from (with the seed and the image's id).
RANDOM_STREAM = "head-random"


def _slice(targets: Any, start: int, n: int) -> Any:
    """The targets of images ``start … start + n − 1``: None and an int stay as they are."""
    if targets is None or np.ndim(targets) == 0:
        return targets
    return torch.as_tensor(targets)[start : start + n]


def _gates(
    sites: Sequence[Any], heads_per_image: Sequence[Sequence[int]], b: int, like: torch.Tensor
) -> list[torch.Tensor]:
    d = sum(s.num_heads for s in sites)
    keep = torch.ones(b, d, dtype=like.dtype, device=like.device)
    for i, heads in enumerate(heads_per_image):
        idx = [int(h) for h in heads]
        bad = [h for h in idx if not 0 <= h < d]
        if bad:
            raise QxaiError(
                f"head index {bad[0]} of image {i} is not one of the {d} heads (0..{d - 1}); check blocks="
            )
        keep[i, idx] = 0.0
    return list(keep.split([s.num_heads for s in sites], dim=1))


def head_ablation(
    model: torch.nn.Module, inputs: torch.Tensor, targets: Any, heads_per_image: Sequence[Sequence[int]],
    *, blocks: str | int = "last", batch_size: int = 64,
) -> np.ndarray:  # fmt: skip
    """``(B,)`` float64 drop of the target logit, ``z(x) − z(x with the heads zeroed)``, per image.

    ``inputs`` ``(B, C, H, W)``; ``targets`` None (predicted class), an int or ``(B,)``;
    ``heads_per_image[i]`` the head indices (as :class:`QAHeadsExplainer` numbers them for the same
    ``blocks``) to zero on image ``i`` (an empty list: drop 0). Run in eval mode, no gradient.
    """
    sites = select_sites(model, blocks)
    if len(heads_per_image) != len(inputs):
        raise QxaiError(
            f"{len(heads_per_image)} head lists for {len(inputs)} images; give one list per image"
        )
    if batch_size < 1:
        raise QxaiError(f"batch_size must be ≥ 1, got {batch_size}")
    drops = []
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            x = inputs[start : start + batch_size]
            full = model(x)
            t = target_classes(_slice(targets, start, len(x)), len(x), full).to(full.device)
            gates = _gates(sites, heads_per_image[start : start + len(x)], len(x), x)
            with HeadHooks(sites, gates):
                ablated = model(x)
            z, za = full.gather(1, t.view(-1, 1))[:, 0], ablated.gather(1, t.view(-1, 1))[:, 0]
            drops.append((z - za).double().cpu().numpy())
    return np.concatenate(drops) if drops else np.zeros(0)


def random_heads(seed: int, ids: Sequence[int], sizes: Sequence[int], d: int) -> list[list[int]]:
    """Per image, ``sizes[i]`` distinct heads of ``0..d−1`` drawn from ``(seed, RANDOM_STREAM, ids[i])``.

    >>> both = random_heads(0, [7, 8], [2, 1], 4)
    >>> both == [random_heads(0, [7], [2], 4)[0], random_heads(0, [8], [1], 4)[0]]
    True
    """
    return [sorted(int(h) for h in numpy_rng(seed, RANDOM_STREAM, int(i)).choice(d, int(k), replace=False))
            for i, k in zip(ids, sizes, strict=True)]  # fmt: skip


def top_heads(weights: np.ndarray, sizes: Sequence[int]) -> list[list[int]]:
    """Per image, the ``sizes[i]`` heads of largest weight ``weights[i]`` (ties: the lower index).

    >>> top_heads(np.array([[0.1, 0.5, 0.5, -1.0]]), [2])
    [[1, 2]]
    """
    out = []
    for w, k in zip(np.asarray(weights), sizes, strict=True):
        order = np.lexsort((np.arange(len(w)), -w))  # primary: weight, descending; then index
        out.append(sorted(int(h) for h in order[: int(k)]))
    return out


def _verdict(lo: float, hi: float, other: str) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"not testable: fewer than {MIN_VALUES} images with a selection"
    if lo > 0:
        return "qa"
    if hi < 0:
        return other
    return "tie"


def head_causal_comparison(
    model: torch.nn.Module, inputs: torch.Tensor, targets: Any = None, seed: int = 0, *,
    blocks: str | int = "last", ids: Sequence[int] | None = None, batch_size: int = 64, **options: Any,
) -> dict[str, Any]:  # fmt: skip
    """QA-heads' selection against the gradient-weight and random choices of the same size, by the
    logit drop when the heads are zeroed (see the module docstring). JSON-able.

    ``inputs`` ``(B, C, H, W)``; ``targets`` None (predicted class), an int or ``(B,)``; ``seed``
    the solver's, the random heads' and the bootstrap's; ``ids`` the images' ids in their data set
    (default ``0..B−1``); ``options`` go to :class:`QAHeadsExplainer` (``solver``, ``beta``, …).
    Images whose selection is empty (degenerate) are left out of the comparison and counted.

    Returns ``{"images", "compared", "degenerate": {kind: count}, "diagnosis": [the one-line cause
    of each kind, most frequent first], "blocks", "heads", "mean_selected",
    "same_as_gradient": share of compared images whose S equals the top-|S| set, "methods": {name:
    {"mean_drop", "interval"}}, "paired": {"qa - gradient-weight": {"difference", "interval",
    "p_value", "verdict"}, "qa - random": …}, "seed", "solver"}``.
    """
    ids = list(range(len(inputs))) if ids is None else [int(i) for i in ids]
    if len(ids) != len(inputs):
        raise QxaiError(f"{len(ids)} ids for {len(inputs)} images; give one id per image")
    options.setdefault("ground_truth", "never")  # the oracle needs the selection only
    explainer = QAHeadsExplainer(model, blocks=blocks, seed=seed, **options)
    sel: list[list[int]] = []
    weights, flags, chosen_targets = [], [], []
    for start in range(0, len(inputs), batch_size):
        x = inputs[start : start + batch_size]
        t = _slice(targets, start, len(x))
        exp = explainer.explain(x, t)
        sel += exp.extras["selected"]
        weights.append(exp.extras["head_weights"])
        flags += exp.extras["degenerate"]
        chosen_targets.append(torch.as_tensor(exp.targets))
    w = np.concatenate(weights)
    t_all = torch.cat(chosen_targets)
    keep = [i for i, s in enumerate(sel) if s]
    sizes = [len(sel[i]) for i in keep]
    sets = {
        "qa": [sel[i] for i in keep],
        "gradient-weight": top_heads(w[keep], sizes),
        "random": random_heads(seed, [ids[i] for i in keep], sizes, explainer.num_heads),
    }
    x_keep, t_keep = inputs[keep], t_all[keep]
    drops = {name: head_ablation(model, x_keep, t_keep, heads, blocks=blocks, batch_size=batch_size)
             if keep else np.zeros(0) for name, heads in sets.items()}  # fmt: skip
    n = len(keep)
    methods = {
        name: {"mean_drop": float(v.mean()) if n else float("nan"),
               "interval": list(bootstrap_interval(v, seed=seed))}
        for name, v in drops.items()
    }  # fmt: skip
    paired = {}
    for other in ("gradient-weight", "random"):
        a, b = drops["qa"], drops[other]
        test = paired_test(lambda i, a=a: float(a[i].mean()), lambda i, b=b: float(b[i].mean()), n, seed=seed)
        lo, hi = test.interval
        paired[f"qa - {other}"] = {
            "difference": test.difference, "interval": [lo, hi], "p_value": test.p_value,
            "verdict": _verdict(lo, hi, other),
        }  # fmt: skip
    empty = [f or "empty_selection" for f, s in zip(flags, sel, strict=True) if not s]
    degenerate = dict(Counter(empty))
    same = [sets["qa"][j] == sets["gradient-weight"][j] for j in range(n)]
    return {
        "images": len(inputs),
        "compared": n,
        "degenerate": degenerate,
        "diagnosis": [d["sentence"] for d in diagnose(empty, unit="head")],
        "blocks": [s.name for s in explainer.sites],
        "heads": explainer.num_heads,
        "mean_selected": float(np.mean(sizes)) if n else float("nan"),
        "same_as_gradient": float(np.mean(same)) if n else float("nan"),
        "methods": methods,
        "paired": paired,
        "seed": int(seed),
        "solver": explainer.solver,
    }


__all__ = ["RANDOM_STREAM", "head_ablation", "head_causal_comparison", "random_heads", "top_heads"]
