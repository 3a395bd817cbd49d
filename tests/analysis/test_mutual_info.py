"""All-pairs MI against the Gaussian closed form and scikit-learn's KSG; permutation p-values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kstest, spearmanr

from qxai.analysis.mutual_info import fdr_significant, gaussian_mi, ksg_mi, mutual_information_matrix
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
    n = 6000
    r = mutual_information_matrix(np.exp(x), y**3, method=method, bins=16)  # monotone maps keep MI
    truth = np.array([gaussian_mi(p) for p in rhos])
    diag = np.diag(r.mi)
    # gcmi — delta method: sd(Î) ≈ |ρ|/√N (dI/dr = r/(1−r²), Var r ≈ (1−ρ²)²/N); at ρ = 0,
    # Î ≈ χ²₁/2N, whose 99.99 % quantile is 15/2N: four standard deviations plus that.
    # binned — the plug-in estimate is biased up by ≈ (bins−1)²/2N and down by discretisation.
    tol = 4 * np.abs(rhos) / np.sqrt(n) + 8 / n if method == "gcmi" else np.full(len(rhos), 0.08)
    assert np.all(np.abs(diag - truth) <= tol), (diag, truth, tol)
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
    top = r.top_pairs(1, ("conv1", "conv2"))[0]
    expected = {"conv1": 1, "conv2": 1, "mi": r.mi[1, 1], "p": 0.01, "p_analytic": r.analytic_pvalues[1, 1]}
    assert top == expected
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


def test_analytic_null_is_uniform_under_independence() -> None:
    """2N·Î ~ χ²₁ for GCMI under independence: the analytic p-values are uniform.

    With one x column and M independent y columns, the normal scores of every column are the same
    fixed set of values in a random order, so the M correlations r(x, y_j) are i.i.d. draws of the
    permutation null: M independent p-values from one call.
    """
    rng = np.random.default_rng(5)
    n, m = 100, 4000
    r = mutual_information_matrix(rng.normal(size=(n, 1)), rng.exponential(size=(n, m)))
    p = r.analytic_pvalues.ravel()
    assert r.df == 1 and p.shape == (m,)
    assert kstest(p, "uniform").pvalue > 1e-3
    # coverage at 5 %: binomial sd = sqrt(0.05·0.95/4000) = 0.0034; allow 4 sd (the χ² limit is
    # asymptotic; at N = 100 its excess over 5 % is ≈ 0.3 %, inside this)
    assert abs((p < 0.05).mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / m)
    # FDR on uniform p-values rejects (almost) nothing; the permutation p-values' floor is gone
    assert fdr_significant(p).sum() <= 2


def test_binned_analytic_null_uses_bins_minus_one_squared_df() -> None:
    rng = np.random.default_rng(6)
    n, m, bins = 800, 1500, 4  # 50 samples per cell: the G-test's χ² limit holds
    x, y = rng.normal(size=(n, 1)), rng.normal(size=(n, m))
    r = mutual_information_matrix(x, y, method="binned", bins=bins)
    p = r.analytic_pvalues.ravel()
    assert r.df == (bins - 1) ** 2
    assert abs((p < 0.05).mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / m)


def test_analytic_pvalues_find_dependence_below_the_permutation_floor() -> None:
    x, y = _correlated([0.0] * 30 + [0.4] * 30, 300, 7)
    r = mutual_information_matrix(x, y, permutations=19, seed=0)
    diag = np.eye(60, dtype=bool)
    dependent = diag & (np.arange(60) >= 30)[:, None]
    # 3600 pairs, 19 permutations: every p ≥ 0.05, BH rejects nothing on them
    assert not fdr_significant(r.pvalues).any()
    # the analytic p-values recover the 30 dependent pairs (ρ = 0.4, N = 300: 2N·I ≈ 52, p ≈ 5e-13)
    found = fdr_significant(r.analytic_pvalues)
    assert found[dependent].all() and found[~dependent].sum() <= 3
