"""The demo's ``heads`` stage, for a Transformer: QA over attention heads checked against the head-
ablation oracle, and the report's "Transformer" row of pictures.

On ``per_class`` correctly classified test images per class, :func:`qxai.evaluate.heads.
head_causal_comparison` runs ``qa-heads`` and zeroes its selected heads, the same number of heads by
gradient weight, and as many random heads; the mean drop of the target logit of each, with 95 %
intervals, and QA's paired differences become ``heads.json`` and two claim rows (QA against the
gradient-weight choice, and against random heads — the null a selection must beat). The comparison
runs over the last block's heads and over every block's (d = depth × heads, the large-d case).
``transformer.png`` shows, per pictured image, the image, the token-grid CAM (GradCAM), attention
rollout, Chefer et al.'s relevance, QA-heads' map, and the class token's attention of each head of the
last block, the selected heads framed.

>>> doc = run_heads_stage("demo-out/heads", "demo-out/model/model.pt", HeadsSettings())  # doctest: +SKIP
>>> doc["comparisons"]["last"]["paired"]["qa - random"]["verdict"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qxai.claims import FAILS, HOLDS, UNTESTABLE, Claim, side_of_zero
from qxai.errors import QxaiError
from qxai.evaluate.statistics import MIN_VALUES
from qxai.pipeline.stage import Figure, write_stage
from qxai.stages import STAGES

#: the methods of the picture, in its column order (each must apply to the model)
PICTURE_METHODS = ("gradcam", "rollout", "chefer", "qa-heads")
#: the head sets compared: QA's block choice ``"last"`` and every block, ``"all"``
BLOCK_CHOICES = ("last", "all")


@dataclass(frozen=True)
class HeadsSettings:
    """``per_class`` correctly classified test images per class; ``pictured`` images in the figure;
    ``seed`` the image draw's, the solver's, the random heads' and the bootstrap's."""

    per_class: int = 10
    pictured: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("per_class", "pictured"):
            if int(getattr(self, name)) < 1:
                value = getattr(self, name)
                raise QxaiError(f"heads {name} must be at least 1, got {value}; give a positive count")
        if self.seed < 0:
            raise QxaiError(f"seed must be ≥ 0, got {self.seed}; use 0, 1, 2, …")


def run_heads_stage(
    out: str | os.PathLike[str], checkpoint: str | os.PathLike[str], settings: HeadsSettings | None = None
) -> dict[str, Any]:
    """Compare QA-heads with the gradient-weight and random head sets on the model of ``checkpoint``
    (a Transformer) and write ``out/heads.json`` (with its claim rows) and ``out/transformer.png``.
    Returns the document as written."""
    from qxai.evaluate.heads import head_causal_comparison
    from qxai.models.loading import load_model_and_data
    from qxai.models.registry import transformer_blocks
    from qxai.models.selection import select_correct_per_class

    settings = settings or HeadsSettings()
    md = load_model_and_data(str(checkpoint))
    if not transformer_blocks(md.model):
        arch = md.config.get("arch", type(md.model).__name__)
        raise QxaiError(
            f"the heads stage needs a Transformer; '{arch}' has no attention blocks "
            "(run the demo with --arch vit-tiny, or leave 'heads' out of --stages)"
        )
    data = select_correct_per_class(md.model, md.split.test, settings.per_class, settings.seed)
    comparisons = {
        blocks: head_causal_comparison(md.model, data.images, data.labels, settings.seed, blocks=blocks)
        for blocks in BLOCK_CHOICES
    }
    doc: dict[str, Any] = {
        "settings": asdict(settings),
        "layer": md.layer,
        "comparisons": comparisons,
        "claims": [c.to_dict() for c in head_claims(comparisons)],
        "summary": _summary(comparisons),
    }
    rows = _pictured_rows(data.labels.numpy(), settings.pictured)
    fig = transformer_figure(md.model, md.layer, data.images[rows], data.labels[rows], md.class_names,
                             settings.seed)  # fmt: skip
    caption = (
        "Per image: GradCAM on the token grid of layer " + md.layer + ", attention rollout, Chefer et "
        "al.'s gradient-weighted relevance, QA over the last block's heads, and the class token's "
        "attention to the patches for each head of the last block (framed: selected by QA)."
    )
    figure = (Figure("transformer.png", "Transformer: token-grid maps and attention heads", caption), fig)
    return write_stage(Path(out), STAGES["heads"].main, doc, figures=[figure])


def head_claims(comparisons: dict[str, dict[str, Any]]) -> list[Claim]:
    """Two rows per block choice: zeroing QA's heads lowers the target logit more than zeroing the
    top-|S| heads by gradient weight, and more than |S| random heads. A row holds only where the
    paired interval lies above 0; a tie or a loss does not hold; no compared image is not testable."""
    rows: list[Claim] = []
    for blocks, comparison in comparisons.items():
        where = "the last block's heads" if blocks == "last" else "every block's heads"
        for other, label in (("gradient-weight", "the top-|S| heads by gradient weight"),
                             ("random", "|S| random heads")):  # fmt: skip
            claim = f"QA over {where} finds the heads the prediction needs: zeroing them drops the logit more than {label}"  # noqa: E501
            test = comparison["paired"][f"qa - {other}"]
            n = comparison["compared"]
            side = side_of_zero(test["interval"])
            if n == 0 or not np.isfinite(test["difference"]) or side is None:
                said = comparison.get("diagnosis") or [f"degenerate: {comparison['degenerate']}"]
                why = (f"no image with a non-empty head selection: {said[0]}"
                       if n == 0 else f"only {n} images with a non-empty head selection; an interval needs "
                       f"at least {MIN_VALUES} (raise --per-class)")  # fmt: skip
                rows.append(Claim(claim, None, None, "— (qxai's own claim)", UNTESTABLE, why, "heads"))
                continue
            lo, hi = test["interval"]
            verdict = HOLDS if side == "above" else FAILS
            kind = {"above": "above 0", "contains": "contains 0: a tie", "below": "below 0: QA loses"}[side]
            why = (f"paired logit drop QA − {other} over {n} images, interval {kind}; mean |S| = "
                   f"{comparison['mean_selected']:.2f} of {comparison['heads']} heads")  # fmt: skip
            rows.append(Claim(claim, round(test["difference"], 4), [round(lo, 4), round(hi, 4)],
                              "— (qxai's own claim)", verdict, why, "heads"))  # fmt: skip
    return rows


def _summary(comparisons: dict[str, dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for blocks, c in comparisons.items():
        summary[f"{blocks}: heads (d)"] = c["heads"]
        summary[f"{blocks}: images compared"] = c["compared"]
        summary[f"{blocks}: mean |S|"] = round(c["mean_selected"], 3)
        for name, m in c["methods"].items():
            lo, hi = m["interval"]
            summary[f"{blocks}: {name} logit drop"] = f"{m['mean_drop']:.3g} [{lo:.3g}, {hi:.3g}]"
        for name, t in c["paired"].items():
            summary[f"{blocks}: {name}"] = t["verdict"]
    return summary


def _pictured_rows(labels: np.ndarray, count: int) -> list[int]:
    """The first image of each of the first ``count`` classes (fewer classes: the first images)."""
    rows = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)][:count]
    return rows or list(range(min(count, len(labels))))


def transformer_figure(
    model: torch.nn.Module, layer: str, images: torch.Tensor, labels: torch.Tensor, class_names: list[str],
    seed: int,
) -> Any:  # fmt: skip
    """The "Transformer" row per image: image | one map per :data:`PICTURE_METHODS` | the class
    token's attention of each last-block head, QA's selected heads framed in green."""
    from matplotlib.figure import Figure as MplFigure

    from qxai.explain.figures import displayable
    from qxai.explain.registry import get_explainer
    from qxai.explain.rollout import recorded_attention
    from qxai.models.modes import eval_mode

    maps, heads_selected = {}, None
    for name in PICTURE_METHODS:
        exp = get_explainer(name, model, layer, seed=seed).explain(images, labels)
        maps[name] = exp.saliency
        if name == "qa-heads":
            heads_selected = exp.extras["selected"]
    with eval_mode(model), torch.no_grad(), recorded_attention(model) as seen:
        model(images)
    last = seen[-1].float().numpy()  # (B, heads, T, T)
    heads = last.shape[1]
    grid = _token_grid(model, last.shape[-1], images.shape[-2:])
    columns = 1 + len(PICTURE_METHODS) + heads
    fig = MplFigure(figsize=(1.45 * columns, 1.6 * len(images)))
    axes = fig.subplots(len(images), columns, squeeze=False)
    for r in range(len(images)):
        picture = displayable(images[r].numpy())
        cmap = "gray" if picture.ndim == 2 else None
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].imshow(picture, cmap=cmap)
        axes[r, 0].set_title(class_names[int(labels[r])], fontsize=7)
        for c, name in enumerate(PICTURE_METHODS, 1):
            axes[r, c].imshow(picture, cmap=cmap)
            axes[r, c].imshow(maps[name][r], cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
            axes[r, c].set_title(name, fontsize=7)
        chosen = set(heads_selected[r]) if heads_selected is not None else set()
        for h in range(heads):
            ax = axes[r, 1 + len(PICTURE_METHODS) + h]
            prefix = last.shape[-1] - grid[0] * grid[1]
            ax.imshow(last[r, h, 0, prefix:].reshape(grid), cmap="viridis")
            selected = h in chosen  # blocks="last" numbers the last block's heads 0 … heads − 1
            ax.set_title(f"head {h}" + (" ✓" if selected else ""), fontsize=7)
            for spine in ax.spines.values():
                spine.set_edgecolor("#17a34a" if selected else "#cccccc")
                spine.set_linewidth(3 if selected else 0.5)
    fig.tight_layout()
    return fig


def _token_grid(model: torch.nn.Module, tokens: int, size: tuple[int, int] | torch.Size) -> tuple[int, int]:
    """The patch grid ``(h, w)`` of an attention row over ``tokens`` tokens, read by the same
    layout rule as every explainer (:func:`qxai.probe.tokens.detect_layout`: the model's declared
    patch size, prefix tokens and stated layout); an ambiguous or impossible grid is its one-line
    error naming ``--tokens``/``--grid``."""
    from qxai.probe.tokens import detect_layout, model_patch_size, model_prefix_tokens, stated_layout

    layout = detect_layout(
        (1, tokens, 1), (int(size[0]), int(size[1])), 1, layer="attention", patch=model_patch_size(model),
        prefix=model_prefix_tokens(model), stated=stated_layout(model),
    )  # fmt: skip
    return layout.grid
