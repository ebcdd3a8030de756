"""Similarity analyses against direct numpy/scipy computations."""

import itertools

import numpy as np
import pytest
import xarray as xr
from scipy import linalg, stats
from scipy.spatial.distance import cdist

from analyses.similarity import cka, procrustes_distance, rsa, rsm


def _activity(x, times=None):
    dims = ("time", "member", "unit", "stimulus")[-x.ndim :]
    if x.ndim == 3:
        dims = ("time", "unit", "stimulus")
    coords = {"time": np.arange(x.shape[0], dtype=float) if times is None else times}
    return xr.DataArray(x, dims=dims, coords=coords)


@pytest.fixture
def act():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 2, 40, 9))
    x = base + 0.7 * rng.normal(size=(4, 2, 40, 9)) + 2.0
    x[1, 0, 3] = np.nan  # unit 3 of member 0 untracked at time 1
    x[2, 1, [5, 6]] = np.nan
    return _activity(x)


def _drop_nan_units(m):
    """(unit, stimulus) matrix without the units that have any NaN."""
    return m[~np.isnan(m).any(axis=1)]


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "kernel"])
def test_rsm_matches_direct(act, metric):
    res = rsm(act, metric=metric)
    assert res["rsm"].dims == ("time", "member", "stimulus", "stimulus_ref")
    for t, m in itertools.product(range(4), range(2)):
        x = _drop_nan_units(act.values[t, m])  # units x stimuli
        if metric == "correlation":
            ref = np.corrcoef(x.T)
        elif metric == "cosine":
            ref = 1 - cdist(x.T, x.T, "cosine")
        elif metric == "euclidean":
            ref = cdist(x.T, x.T, "euclidean")
        else:
            ref = x.T @ x / x.shape[0]
        got = res["rsm"].isel(time=t, member=m).values
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-7)
        assert (res["n_units"].isel(time=t, member=m).values == x.shape[0]).all()


def test_rsm_pairwise_nan_per_stimulus():
    """A NaN in one (unit, stimulus) only drops that unit for the pairs involving it."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 30, 5))
    x[0, 4, 2] = np.nan
    got = rsm(_activity(x))
    ok = np.ones(30, bool)
    ok[4] = False
    assert got["rsm"].values[0, 2, 3] == pytest.approx(np.corrcoef(x[0, ok, 2], x[0, ok, 3])[0, 1])
    assert got["rsm"].values[0, 0, 1] == pytest.approx(np.corrcoef(x[0, :, 0], x[0, :, 1])[0, 1])
    assert got["n_units"].values[0, 2, 3] == 29 and got["n_units"].values[0, 0, 1] == 30


def test_rsm_dask_matches_numpy(act):
    lazy = rsm(act.chunk(unit=13, time=2))
    assert lazy["rsm"].chunks is not None
    np.testing.assert_allclose(lazy["rsm"].values, rsm(act)["rsm"].values, rtol=1e-12)


def _tau_a_bruteforce(x, y):
    i, j = np.triu_indices(x.size, k=1)
    return np.sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])) / i.size


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall"])
def test_rsa_matches_scipy(act, method):
    res = rsa(act, method=method)
    mats = rsm(act)["rsm"].values
    iu = np.triu_indices(9, k=1)
    for m in range(2):
        for t1, t2 in itertools.product(range(4), repeat=2):
            a, b = mats[t1, m][iu], mats[t2, m][iu]
            if method == "pearson":
                ref = stats.pearsonr(a, b).statistic
            elif method == "spearman":
                ref = stats.spearmanr(a, b).statistic
            else:
                ref = _tau_a_bruteforce(a, b)
            got = res["rsa"].sel(member=m).isel(time=t1, time_ref=t2).item()
            assert got == pytest.approx(ref, abs=1e-10)
    assert (res["n_pairs"].values == 36).all()


def test_kendall_tau_a_with_ties():
    """Binary patterns give tied Euclidean RSM entries: tau-a differs from tau-b."""
    rng = np.random.default_rng(2)
    x = (rng.random((2, 6, 10)) > 0.5).astype(float)
    res = rsa(_activity(x), method="kendall", metric="sqeuclidean")
    d = rsm(_activity(x), metric="sqeuclidean")["rsm"].values
    iu = np.triu_indices(10, k=1)
    a, b = d[0][iu], d[1][iu]
    assert res["rsa"].values[0, 1] == pytest.approx(_tau_a_bruteforce(a, b), abs=1e-12)
    assert res["rsa"].values[0, 0] < 1.0  # ties in a itself


def test_spearman_rsa_with_nan_pattern_varying():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 20, 6))
    x[1, :, 2] = 1.0  # constant stimulus pattern at time 1: its correlations are NaN
    res = rsa(_activity(x), method="spearman")
    mats = rsm(_activity(x))["rsm"].values
    iu = np.triu_indices(6, k=1)
    a, b = mats[0][iu], mats[1][iu]
    ok = np.isfinite(a) & np.isfinite(b)
    assert res["rsa"].values[0, 1] == pytest.approx(stats.spearmanr(a[ok], b[ok]).statistic)
    assert res["n_pairs"].values[0, 1] == ok.sum() == 10


def _linear_cka(x, y):
    """Closed form on (stimulus x feature) matrices, Kornblith et al. 2019 eq. (3)."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def _debiased_linear_cka(x, y):
    """Unbiased-centering form (Kornblith et al. code) of the debiased linear CKA."""

    def center(g):
        n = g.shape[0]
        g = g.copy()
        np.fill_diagonal(g, 0)
        means = g.sum(0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        g -= means[:, None] + means[None, :]
        np.fill_diagonal(g, 0)
        return g

    gx, gy = center(x @ x.T), center(y @ y.T)
    return (gx * gy).sum() / np.sqrt((gx * gx).sum() * (gy * gy).sum())


@pytest.fixture
def rotated():
    """Time 1 is a rotated, scaled, shifted copy of time 0; time 2 independent."""
    rng = np.random.default_rng(4)
    s, u = 30, 25
    x0 = rng.normal(size=(s, u))
    q = linalg.qr(rng.normal(size=(u, u)))[0]
    x1 = 3.0 * x0 @ q + 5.0
    x2 = rng.normal(size=(s, u))
    x = np.stack([x0.T, x1.T, x2.T])  # (time, unit, stimulus)
    return x


def test_linear_cka_closed_form_and_invariance(rotated):
    res = cka(_activity(rotated))["cka"].values
    mats = [m.T for m in rotated]
    for i, j in itertools.product(range(3), repeat=2):
        assert res[i, j] == pytest.approx(_linear_cka(mats[i], mats[j]), abs=1e-10)
    assert res[0, 1] == pytest.approx(1.0, abs=1e-10)
    assert 0.1 < res[0, 2] < 0.9  # biased: clearly above 0 for independent data


def test_debiased_cka(rotated):
    res = cka(_activity(rotated), debiased=True)["cka"].values
    mats = [m.T for m in rotated]
    for i, j in itertools.product(range(3), repeat=2):
        assert res[i, j] == pytest.approx(_debiased_linear_cka(mats[i], mats[j]), abs=1e-10)
    assert res[0, 1] == pytest.approx(1.0, abs=1e-10)
    biased = cka(_activity(rotated))["cka"].values
    assert abs(res[0, 2]) < 0.5 * biased[0, 2]


def test_debiased_cka_independent_is_zero_on_average():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 50, 20))  # 40 independent times
    res = cka(_activity(x), debiased=True)["cka"].values
    off = res[~np.eye(40, dtype=bool)]
    assert abs(off.mean()) < 3 * off.std() / np.sqrt(40)


def test_rbf_cka_invariance(rotated):
    res = cka(_activity(rotated), kernel="rbf", sigma=0.8)["cka"].values
    assert res[0, 1] == pytest.approx(1.0, abs=1e-10)
    assert res[0, 2] < 0.95
    # direct: RBF Gram with bandwidth 0.8 x median off-diagonal distance
    x, y = rotated[0].T, rotated[2].T

    def gram(m):
        d2 = cdist(m, m, "sqeuclidean") / m.shape[1]
        med = np.median(d2[~np.eye(len(m), dtype=bool)])
        return np.exp(-d2 / (2 * 0.8**2 * med))

    h = np.eye(30) - 1 / 30
    kx, ky = h @ gram(x) @ h, h @ gram(y) @ h
    ref = (kx * ky).sum() / np.sqrt((kx * kx).sum() * (ky * ky).sum())
    assert res[0, 2] == pytest.approx(ref, abs=1e-10)


def test_cka_nan_units_dropped(rotated):
    x = rotated.copy()
    x[2, [1, 7]] = np.nan
    res = cka(_activity(x))
    ref = _linear_cka(rotated[0].T, np.delete(rotated[2], [1, 7], axis=0).T)
    assert res["cka"].values[0, 2] == pytest.approx(ref, abs=1e-10)
    assert list(res["n_units"].values) == [25, 25, 23]


def test_procrustes_matches_direct(rotated):
    res = procrustes_distance(_activity(rotated), kind="euclidean")["distance"].values
    mats = []
    for m in rotated:
        z = m.T - m.T.mean(0)
        mats.append(z / np.linalg.norm(z))
    for i, j in itertools.product(range(3), repeat=2):
        r, _ = linalg.orthogonal_procrustes(mats[j], mats[i])  # unit-space rotation
        ref = np.linalg.norm(mats[i] - mats[j] @ r)
        assert res[i, j] == pytest.approx(ref, abs=1e-7)
    assert res[0, 1] == pytest.approx(0.0, abs=1e-7)
    ang = procrustes_distance(_activity(rotated))["distance"].values
    np.testing.assert_allclose(ang, np.arccos(np.clip(1 - res**2 / 2, -1, 1)), atol=1e-6)


def test_cka_and_procrustes_dask_match_numpy(rotated):
    act = _activity(rotated)
    lazy = act.chunk(unit=10)
    for func in (cka, procrustes_distance):
        np.testing.assert_allclose(
            func(lazy).to_array().values, func(act).to_array().values, atol=1e-7
        )
