"""Spectra against numpy's SVD; Gram cosine and debiased CKA against their definitions and invariances."""

from __future__ import annotations

import numpy as np
import pytest

from qxai.analysis.similarity import gram_cosine, linear_cka, similarity_matrices
from qxai.analysis.spectrum import density_matrix, layer_spectrum, top_k_share_interval


def test_spectrum_matches_numpy_svd_and_pca() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12)) + 5.0
    s = layer_spectrum(x)
    sv = np.linalg.svd(x - x.mean(0), compute_uv=False)
    np.testing.assert_allclose(s.singular_values, sv, rtol=1e-10)
    # explained variance = eigenvalues of the covariance (an independent route). Each eigenvalue has an
    # absolute error ≲ D·eps·λ_max ≤ D·eps·Σλ, so the ratios agree to an absolute 100·D·eps.
    eig = np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1]
    ratio_tol = 100 * x.shape[1] * EPS
    np.testing.assert_allclose(s.explained_variance_ratio, eig / eig.sum(), rtol=0, atol=ratio_tol)
    np.testing.assert_allclose(s.top_k_share(5), (eig[:5] / eig.sum()).sum(), rtol=0, atol=5 * ratio_tol)
    p = sv / sv.sum()
    assert s.effective_rank == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    # density matrix: unit trace, eigenvalues = ratios, entropy and purity from them
    rho = density_matrix(x)
    lam = np.clip(np.linalg.eigvalsh(rho), 1e-300, None)
    assert np.trace(rho) == pytest.approx(1.0)
    assert s.entropy == pytest.approx(-(lam * np.log(lam)).sum(), rel=1e-8)
    assert s.purity == pytest.approx(np.trace(rho @ rho), rel=1e-8)


EPS = np.finfo(np.float64).eps


def test_wide_layer_uses_gram_route_with_same_values() -> None:
    """The Gram route squares the singular values: an eigenvalue λ = σ² of G = Xc Xcᵀ comes with an
    absolute error of about n·eps·σ_max² (backward-stable eigensolver), so σ = √λ is off by about
    n·eps·σ_max² / σ — and a singular value that is zero in exact arithmetic (centring makes this
    20 × 200 matrix rank 19) comes out as large as √(n·eps)·σ_max ≈ 1e-6, whatever the BLAS kernel."""
    rng = np.random.default_rng(2)
    n = 20
    x = rng.normal(size=(n, 200))
    sv = np.linalg.svd(x - x.mean(0), compute_uv=False)
    ours = layer_spectrum(x).singular_values
    floor = np.sqrt(n * EPS) * sv[0]
    tol = 10 * n * EPS * sv[0] ** 2 / np.maximum(sv, floor)
    assert np.all(np.abs(ours - sv) <= tol), np.abs(ours - sv) / tol
    assert sv[-1] < 1e-12 * sv[0] and ours[-1] <= 10 * np.sqrt(n * EPS) * sv[0]  # the exact zero
    # the spectrum's summaries do not see that difference: variances are squares, σ_min² ≈ n·eps·σ_max²
    np.testing.assert_allclose(
        layer_spectrum(x).explained_variance_ratio, sv**2 / (sv**2).sum(), atol=100 * n * EPS
    )


def test_rank_one_layer_is_pure_state() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 1)) * rng.normal(size=(1, 6))
    s = layer_spectrum(x)
    assert s.purity == pytest.approx(1.0) and s.entropy == pytest.approx(0.0, abs=1e-9)
    assert s.numerical_rank == 1


def test_constant_activations_give_no_nan_and_are_reported() -> None:
    s = layer_spectrum(np.full((50, 8), 3.0))
    assert s.constant and s.effective_rank == 0.0 and s.top_k_share(5) == 0.0
    assert all(np.isfinite(v) for v in (s.entropy, s.purity))
    partly = np.random.default_rng(0).normal(size=(50, 4))
    partly[:, 2] = 0.0  # a dead ReLU
    assert layer_spectrum(partly).dead_units == [2]
    m = similarity_matrices({"a": partly, "b": np.zeros((50, 3))})
    assert np.isfinite(m["cka"]).all() and np.isfinite(m["cosine"]).all()
    assert m["constant_layers"] == ["b"] and m["cka"][0, 1] == 0.0


def _kornblith_unbiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Song et al.'s unbiased HSIC written out term by term (independent of the U-centring route)."""

    def hsic(k: np.ndarray, l_: np.ndarray) -> float:
        n = len(k)
        k, l_ = k.copy(), l_.copy()
        np.fill_diagonal(k, 0)
        np.fill_diagonal(l_, 0)
        one = np.ones(n)
        return (
            np.trace(k @ l_)
            + (one @ k @ one) * (one @ l_ @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ k @ l_ @ one
        ) / (n * (n - 3))

    k, l_ = x @ x.T, y @ y.T
    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def test_cka_properties_and_formula() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(80, 10))
    y = np.tanh(x @ rng.normal(size=(10, 7))) + 0.3 * rng.normal(size=(80, 7))
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x @ q, y) == pytest.approx(linear_cka(x, y), rel=1e-9)  # orthogonal invariance
    assert linear_cka(7.5 * x, y) == pytest.approx(linear_cka(x, y), rel=1e-9)  # isotropic scaling
    assert linear_cka(x + 3.0, y) == pytest.approx(linear_cka(x, y), rel=1e-9)  # translation
    assert linear_cka(x, y) == pytest.approx(_kornblith_unbiased_cka(x, y), rel=1e-8)
    # the Gram cosine equals the RV coefficient written in feature space
    xc, yc = x - x.mean(0), y - y.mean(0)
    rv = np.linalg.norm(xc.T @ yc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert gram_cosine(x, y) == pytest.approx(rv, rel=1e-9)
    assert gram_cosine(x @ q * 2.0, y) == pytest.approx(rv, rel=1e-9)
    # debiasing matters: unrelated wide layers look similar to the biased measure, not to debiased CKA
    a, b = rng.normal(size=(40, 200)), rng.normal(size=(40, 200))
    assert gram_cosine(a, b) > 0.5 and abs(linear_cka(a, b)) < 0.1


@pytest.mark.slow
def test_top_k_share_interval_covers_the_population_value() -> None:
    """Coverage of the nominal 95 % basic-bootstrap interval over 200 independent draws.

    A separated spectrum (top 5 well above a flat bulk), N = 500, D = 20: the basic interval is
    first-order correct, measured at ≈ 0.93 here; the tolerance is the issue's ±3 % around the
    nominal rate plus one binomial sd (√(0.95·0.05/200) = 1.5 %) on the low side.
    """
    lam = np.array([10.0, 8, 6, 5, 4] + [1.0] * 15)
    truth = lam[:5].sum() / lam.sum()
    rng = np.random.default_rng(11)
    draws, covered = 200, 0
    for r in range(draws):
        x = rng.normal(size=(500, 20)) * np.sqrt(lam)
        lo, hi = top_k_share_interval(x, 5, resamples=300, seed=r)
        covered += lo <= truth <= hi
    assert 0.95 - 0.03 - 0.015 <= covered / draws <= 0.95 + 0.03


def test_top_k_share_interval_is_seeded_and_handles_degenerate_input() -> None:
    x = np.random.default_rng(12).normal(size=(60, 8)) * np.arange(1, 9)
    a = top_k_share_interval(x, 2, resamples=50, seed=3)
    assert a == top_k_share_interval(x, 2, resamples=50, seed=3)
    assert a is not None and a[0] <= layer_spectrum(x).top_k_share(2) <= a[1]
    wide = np.random.default_rng(13).normal(size=(12, 40))  # D > N: the Gram route of the resamples
    lo, hi = top_k_share_interval(wide, 3, resamples=50)
    assert 0 <= lo <= hi <= 1
    assert top_k_share_interval(np.ones((30, 4)), 2) is None
    assert top_k_share_interval(x, 2, resamples=0) is None
