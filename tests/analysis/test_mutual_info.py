"""All-pairs MI against the Gaussian closed form and scikit-learn's KSG; permutation p-values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from qxai.analysis.mutual_info import gaussian_mi, ksg_mi, mutual_information_matrix
from qxai.errors import QxaiError


def _correlated(rhos: list[float], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(rhos)))
    y = np.stack([r * x[:, i] + np.sqrt(1 - r * r) * rng.normal(size=n) for i, r in enumerate(rhos)], axis=1)
    return x, y


@pytest.mark.parametrize("method", ["gcmi", "binned"])
def test_gaussian_closed_form(method: str) -> None:
    rhos = [0.0, 0.3, 0.6, 0.9]
    x, y = _correlated(rhos, 6000, 0)
    r = mutual_information_matrix(np.exp(x), y**3, method=method, bins=16)  # monotone maps keep MI
    truth = np.array([gaussian_mi(p) for p in rhos])
    diag = np.diag(r.mi)
    tol = 0.02 if method == "gcmi" else 0.08  # the plug-in binned estimate is biased by ~bins²/2N
    np.testing.assert_allclose(diag, truth, atol=tol)
    assert r.mi[0, 3] < 0.03 and r.mi.shape == (4, 4)


def test_agrees_with_ksg_over_pairs() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(800, 6))
    noise = 0.2 * 2.0 ** np.arange(6)  # dependence weakening pair by pair
    y = np.tanh(x) + rng.normal(size=(800, 6)) * noise
    r = mutual_information_matrix(x, y)
    ksg = np.array([[ksg_mi(x[:, i], y[:, j]) for j in range(6)] for i in range(6)])
    # the dependent pairs (diagonal, decreasing strength) are ranked alike; independent pairs are ~0 for both
    assert spearmanr(np.diag(r.mi), np.diag(ksg)).statistic > 0.9
    # y = tanh(x) + noise is not a Gaussian copula: GCMI is a lower bound there, within ~25 % of KSG
    np.testing.assert_allclose(np.diag(r.mi), np.diag(ksg), rtol=0.25, atol=0.03)
    off = ~np.eye(6, dtype=bool)
    assert r.mi[off].max() < 0.02 and ksg[off].max() < 0.1


def test_permutation_pvalues_and_top_pairs() -> None:
    x, y = _correlated([0.0, 0.5], 400, 2)
    r = mutual_information_matrix(x, y, permutations=99, seed=0)
    assert r.pvalues is not None and r.pvalues[1, 1] == pytest.approx(0.01)
    assert r.pvalues[0, 0] > 0.01
    assert r.top_pairs(1, ("conv1", "conv2"))[0] == {"conv1": 1, "conv2": 1, "mi": r.mi[1, 1], "p": 0.01}
    again = mutual_information_matrix(x, y, permutations=99, seed=0)
    np.testing.assert_array_equal(r.pvalues, again.pvalues)  # same seed, same output


def test_constant_features_and_bad_input() -> None:
    x, y = _correlated([0.5, 0.5], 100, 3)
    x[:, 0] = 1.0
    for method in ("gcmi", "binned"):
        r = mutual_information_matrix(x, y, method=method, permutations=5)
        assert np.isfinite(r.mi).all() and (r.mi[0] == 0).all() and r.constant_x == [0]
        assert r.pvalues is not None and (r.pvalues[0] == 1).all()
    with pytest.raises(QxaiError, match="same inputs"):
        mutual_information_matrix(x, y[:50])
    with pytest.raises(QxaiError, match="did you mean 'gcmi'"):
        mutual_information_matrix(x, y, method="gcm")
