"""Sanity checks (Adebayo et al., 2018): an explanation must depend on the model and on the target.

- Model-parameter randomisation: re-initialise the weights (all at once, or cascading from the
  output layer down) and compare the maps with the trained model's by Spearman rank correlation.
- Class sensitivity: compare the maps for the true class and for the runner-up class.

>>> a = np.array([[[0.0, 1.0], [2.0, 3.0]]])
>>> rowwise_spearman(a, a).tolist(), rowwise_spearman(a, -a).tolist()
([1.0], [-1.0])
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from qxai.errors import QxaiError

RANDOMISATION_MODES = ("full", "cascading")


def rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` Spearman correlation between ``a[i]`` and ``b[i]`` (flattened).

    A constant map has no ranking: against a non-constant map it scores 0 (no agreement; a map that
    collapsed to a constant has changed), two constant maps score 1 (nothing changed).
    """
    from scipy.stats import rankdata

    ra = rankdata(np.asarray(a, dtype=np.float64).reshape(len(a), -1), axis=1)
    rb = rankdata(np.asarray(b, dtype=np.float64).reshape(len(b), -1), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denom > 0, (ra * rb).sum(axis=1) / np.where(denom > 0, denom, 1), 0.0)
    both_constant = ((ra**2).sum(axis=1) == 0) & ((rb**2).sum(axis=1) == 0)
    return np.where(both_constant, 1.0, rho)


def abs_spearman(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(|ρ| (N,), blank (N,))``: the unsigned rank correlation of ``a[i]`` and ``b[i]`` as
    Adebayo et al. report it, and whether either map is constant (blank).

    A constant map has no ranking, so its |ρ| is NaN (left out of the mean) and ``blank`` is 1:
    the blank maps are counted in their own column instead of scoring as "no agreement".

    >>> x = np.array([[[0.0, 1.0], [2.0, 3.0]], [[0.0, 0.0], [0.0, 0.0]]])
    >>> rho, blank = abs_spearman(x, -x)
    >>> rho.tolist(), blank.tolist()
    ([1.0, nan], [0.0, 1.0])
    """
    flat_a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    flat_b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    blank = (np.ptp(flat_a, axis=1) == 0) | (np.ptp(flat_b, axis=1) == 0)
    rho = np.abs(rowwise_spearman(a, b))
    return np.where(blank, np.nan, rho), blank.astype(float)


def parameter_layers(model: torch.nn.Module) -> list[str]:
    """Names of the modules that own parameters and can re-initialise them, output layer first."""
    names = [
        name for name, m in model.named_modules()
        if name and hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))
    ]  # fmt: skip
    return names[::-1]


def randomised_copy(model: torch.nn.Module, layers: list[str] | None, seed: int) -> torch.nn.Module:
    """A deep copy of ``model`` whose ``layers`` (all parameter layers when None) are re-initialised
    with their own ``reset_parameters`` from ``seed``. The original is untouched."""
    clone = copy.deepcopy(model)
    modules = dict(clone.named_modules())
    chosen = parameter_layers(clone) if layers is None else layers
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in chosen:
            modules[name].reset_parameters()  # type: ignore[operator]
    return clone.eval()


def randomisation_stages(model: torch.nn.Module, mode: str) -> list[list[str]]:
    """The layer sets to randomise: one stage with all layers (``full``) or the cascade
    ``[top], [top, next], …`` (``cascading``)."""
    layers = parameter_layers(model)
    if not layers:
        raise QxaiError("the model has no parameter layers to randomise")
    if mode == "full":
        return [layers]
    if mode == "cascading":
        return [layers[: i + 1] for i in range(len(layers))]
    raise QxaiError(f"randomisation must be one of {', '.join(RANDOMISATION_MODES)}, got '{mode}'")


@torch.no_grad()
def runner_up_classes(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(N,)`` the most likely class other than each target (for the class-sensitivity check)."""
    from qxai.probe import eval_mode

    with eval_mode(model):
        logits = model(images).float()
    logits[torch.arange(len(images)), targets] = -torch.inf
    return logits.argmax(dim=1)
