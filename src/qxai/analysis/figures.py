"""Figures of the QIXAI analyses (matplotlib, Agg). Each function returns a figure; the caller saves
it with :func:`qxai.io.write_figure`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from qxai.analysis.spectrum import LayerSpectrum


def spectra_figure(spectra: Mapping[str, LayerSpectrum], k: int = 5, shown: int = 40) -> Any:
    """Explained-variance ratios (log scale) and cumulative share per layer, top ``k`` marked."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, s in spectra.items():
        if s.constant:
            continue
        idx = np.arange(1, min(shown, s.width) + 1)
        ax1.semilogy(idx, np.maximum(s.explained_variance_ratio[: len(idx)], 1e-12), marker=".", label=name)
        ax2.plot(idx, s.cumulative[: len(idx)], marker=".", label=f"{name} (top {k}: {s.top_k_share(k):.0%})")
    ax1.set(xlabel="component", ylabel="explained-variance ratio", title="Spectrum per layer")
    ax2.axvline(k, color="grey", lw=0.8, ls="--")
    ax2.set(
        xlabel="components", ylabel="cumulative share", ylim=(0, 1.02), title="Cumulative explained variance"
    )
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def entropy_figure(spectra: Mapping[str, LayerSpectrum]) -> Any:
    """Von Neumann entropy, purity and effective rank of each layer, side by side."""
    names = list(spectra)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    values = {
        "von Neumann entropy S (nats)": [spectra[n].entropy for n in names],
        "purity tr ρ²": [spectra[n].purity for n in names],
        "effective rank (Roy–Vetterli)": [spectra[n].effective_rank for n in names],
    }
    for ax, (title, vals) in zip(axes, values.items(), strict=True):
        ax.bar(range(len(names)), vals, color="tab:blue")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _heatmap(ax: Any, m: np.ndarray, labels: Sequence[str], title: str, vmin: float, vmax: float) -> None:
    im = ax.imshow(m, vmin=vmin, vmax=vmax, cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    if len(labels) <= 12:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="w" if m[i, j] < 0.6 else "k",
                )
    ax.set_title(title, fontsize=9)
    plt.colorbar(im, ax=ax, fraction=0.046)


def similarity_figure(names: Sequence[str], cosine: np.ndarray, cka: np.ndarray) -> Any:
    """Gram-cosine (RV) and debiased linear CKA heatmaps between layers."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    _heatmap(ax1, cosine, names, "cosine of centred Gram matrices (RV)", 0.0, 1.0)
    _heatmap(ax2, cka, names, "linear CKA (debiased)", min(0.0, float(cka.min())), 1.0)
    fig.tight_layout()
    return fig


def mi_figure(
    mi: np.ndarray, names: tuple[str, str], top: Sequence[dict[str, Any]], unit: str = "map"
) -> Any:
    """Heatmap of MI (nats) between every unit of two layers, the top pairs circled and listed."""
    fig, (ax, tx) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 1.2]})
    im = ax.imshow(mi, aspect="auto", cmap="magma")
    for rank, pair in enumerate(top):
        ax.scatter(pair[names[1]], pair[names[0]], s=60, facecolors="none", edgecolors="cyan")
        ax.annotate(str(rank + 1), (pair[names[1]], pair[names[0]]), color="cyan", fontsize=7)
    ax.set(
        xlabel=f"{names[1]} {unit}",
        ylabel=f"{names[0]} {unit}",
        title=f"mutual information (nats): {names[0]} × {names[1]}",
    )
    plt.colorbar(im, ax=ax, fraction=0.046)
    lines = [
        f"{r + 1}. {names[0]} {unit} {p[names[0]]} – {names[1]} {unit} {p[names[1]]}: {p['mi']:.3f}"
        + (f" (p χ² {p['p_analytic']:.1e})" if "p_analytic" in p else "")
        + (f" (p perm {p['p']:.3f})" if "p" in p else "")
        for r, p in enumerate(top)
    ]
    tx.axis("off")
    tx.text(0, 1, "top pairs\n" + "\n".join(lines), va="top", fontsize=7, family="monospace")
    fig.tight_layout()
    return fig


def ig_images_figure(images: np.ndarray, attributions: np.ndarray, titles: Sequence[str]) -> Any:
    """Inputs ``(B, C, H, W)`` above their IG attribution summed over channels (red +, blue −)."""
    b = len(images)
    fig, axes = plt.subplots(2, b, figsize=(2.2 * b, 4.6), squeeze=False)
    for i in range(b):
        img = images[i].transpose(1, 2, 0)
        axes[0, i].imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray")
        attr = attributions[i].sum(axis=0)
        lim = float(np.abs(attr).max()) or 1.0
        axes[1, i].imshow(attr, cmap="bwr", vmin=-lim, vmax=lim)
        axes[0, i].set_title(titles[i], fontsize=7)
        for ax in axes[:, i]:
            ax.axis("off")
    fig.suptitle("Integrated Gradients (bottom: attribution, red positive)", fontsize=9)
    fig.tight_layout()
    return fig


def ig_sequence_figure(signals: np.ndarray, attributions: np.ndarray, titles: Sequence[str]) -> Any:
    """Signals ``(B, T)`` with their per-step IG attribution ``(B, T)`` beneath."""
    b = len(signals)
    fig, axes = plt.subplots(2, b, figsize=(3 * b, 4), squeeze=False, sharex=True)
    for i in range(b):
        axes[0, i].plot(signals[i], lw=1)
        axes[0, i].set_title(titles[i], fontsize=7)
        axes[1, i].bar(
            range(len(attributions[i])),
            attributions[i],
            color=np.where(attributions[i] >= 0, "tab:red", "tab:blue"),
        )
    axes[1, 0].set_ylabel("IG")
    fig.tight_layout()
    return fig


def ig_tokens_figure(tokens: Sequence[Sequence[str]], attributions: np.ndarray, titles: Sequence[str]) -> Any:
    """Per-token IG bars for B token sequences (padding omitted)."""
    b = len(tokens)
    fig, axes = plt.subplots(b, 1, figsize=(8, 1.6 * b), squeeze=False)
    for i in range(b):
        vals = attributions[i][: len(tokens[i])]
        axes[i, 0].bar(range(len(vals)), vals, color=np.where(vals >= 0, "tab:red", "tab:blue"))
        axes[i, 0].set_xticks(range(len(vals)), tokens[i], fontsize=6)
        axes[i, 0].set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def attention_figure(maps: np.ndarray) -> Any:
    """Mean attention map ``(L, heads, T, T)`` of every head."""
    layers, heads = maps.shape[:2]
    fig, axes = plt.subplots(layers, heads, figsize=(2 * heads, 2 * layers), squeeze=False)
    for lay in range(layers):
        for h in range(heads):
            axes[lay, h].imshow(maps[lay, h], cmap="Blues", vmin=0)
            axes[lay, h].set_title(f"layer {lay + 1} head {h + 1}", fontsize=7)
            axes[lay, h].axis("off")
    fig.suptitle("mean attention (rows: queries, columns: keys)", fontsize=9)
    fig.tight_layout()
    return fig
