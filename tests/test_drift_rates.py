"""Drift measures against direct computations and a known Ornstein-Uhlenbeck drift."""

import itertools

import numpy as np
import pytest
import xarray as xr

from analyses.drift_rates import (
    decompose_pv_decorrelation,
    drift_curve,
    drift_index,
    ensemble_rate_correlation,
    fit_drift,
    fit_exponential,
    fraction_stable,
    normalised_index,
    pv_correlation,
    rate_change_index,
    tuning_correlation,
)
from analyses.elapsed import by_elapsed_time
from analyses.synthetic import expected_pv_correlation, ou_population


@pytest.fixture
def small():
    ds = ou_population(n_times=5, n_units=30, n_stimuli=6, n_members=2, tau=3.0, seed=11)
    x = ds["activity"].values.copy()  # (time, member, unit, stimulus)
    x[1, 0, [2, 9]] = np.nan  # untracked in session 1
    x[3, 1, 4] = np.nan
    x[4, 0, 7, 2] = np.nan  # a single missing response
    ds["activity"] = ds["activity"].copy(data=x)
    return ds


def _corr_complete(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    return np.corrcoef(a[ok], b[ok])[0, 1], ok.sum()


def test_pv_correlation_matches_loop(small):
    res = pv_correlation(small)
    assert res["correlation"].dims == ("member", "time", "time_ref")
    x = small["activity"].values
    for m, i, j in itertools.product(range(2), range(5), range(5)):
        rs, ns = zip(*(_corr_complete(x[i, m, :, s], x[j, m, :, s]) for s in range(6)), strict=True)
        got = res.sel(member=m).isel(time=i, time_ref=j)
        assert got["correlation"].item() == pytest.approx(np.mean(rs), abs=1e-12)
        assert got["n_units"].item() == min(ns)


def test_pv_correlation_nan_equals_dropping_units(small):
    """Units NaN in session 1 give the same (0, 1) value as deleting them by hand."""
    x = small["activity"].isel(member=0, time=[0, 1])
    dropped = x.drop_sel(unit=[2, 9])
    a = pv_correlation(x)["correlation"].values[0, 1]
    b = pv_correlation(dropped)["correlation"].values[0, 1]
    assert a == pytest.approx(b, abs=1e-14)


def test_pv_correlation_dask_is_lazy_and_equal(small):
    lazy = pv_correlation(small.chunk(unit=7))
    assert lazy["correlation"].chunks is not None
    np.testing.assert_allclose(
        lazy["correlation"].values, pv_correlation(small)["correlation"].values, atol=1e-13
    )


def test_tuning_and_rate_correlation_match_loop(small):
    x = small["activity"].values
    tun = tuning_correlation(small)
    rate = ensemble_rate_correlation(small)
    assert tun["correlation"].dims == ("member", "unit", "time", "time_ref")
    ok = np.isfinite(x)
    with np.errstate(invalid="ignore"):
        rates = np.where(ok, x, 0).sum(-1) / ok.sum(-1)  # (time, member, unit); NaN if none
    for m, i, j in itertools.product(range(2), range(5), range(5)):
        r, n = _corr_complete(rates[i, m], rates[j, m])
        got = rate.sel(member=m).isel(time=i, time_ref=j)
        assert got["correlation"].item() == pytest.approx(r, abs=1e-12)
        assert got["n_units"].item() == n
        for u in (0, 7, 9):
            a, b = x[i, m, u], x[j, m, u]
            if np.isnan(a).all() or np.isnan(b).all():
                assert np.isnan(tun["correlation"].sel(member=m, unit=u)[i, j])
                continue
            r, n = _corr_complete(a, b)
            got = tun.sel(member=m, unit=u).isel(time=i, time_ref=j)
            assert got["correlation"].item() == pytest.approx(r, abs=1e-12)
            assert got["n_stimuli"].item() == n


def test_by_elapsed_time_regular_and_binned():
    times = np.array([0.0, 1.0, 2.5, 3.0, 7.0])
    rng = np.random.default_rng(0)
    m = xr.DataArray(
        rng.normal(size=(2, 5, 5)),
        dims=("layer", "time", "time_ref"),
        coords={"time": times, "time_ref": times},
    )
    m[0, 1, 3] = np.nan
    res = by_elapsed_time(m)
    lag = np.abs(times[:, None] - times[None, :])
    for k, e in enumerate(res["elapsed"].values):
        sel = np.isclose(lag, e)
        for layer in range(2):
            v = m.values[layer][sel]
            assert res["value"].values[layer, k] == pytest.approx(np.nanmean(v))
        assert res["n_pairs"].values[0, k] == np.isfinite(m.values[0][sel]).sum()
    binned = by_elapsed_time(m, bins=[0, 1, 4, 8], zero_lag=False)
    assert binned.sizes["elapsed"] == 3
    inside = (lag > 0) & (lag >= 1) & (lag < 4)
    assert binned["value"].values[1, 1] == pytest.approx(m.values[1][inside].mean())
    assert binned["elapsed"].values[1] == pytest.approx(lag[inside].mean())
    fwd = by_elapsed_time(m, lags="forward")
    assert fwd["n_pairs"].values[1].sum() == 15  # pairs with time >= time_ref


def test_fit_exponential_exact():
    tau = np.linspace(0.5, 20, 15)
    y = 0.2 + (0.9 - 0.2) * np.exp(-tau / 4.0)
    c0, cinf, td = fit_exponential(tau, y)
    assert (c0, cinf, td) == pytest.approx((0.9, 0.2, 4.0), rel=1e-6)


@pytest.mark.parametrize("measure", ["pv", "tuning"])
def test_fit_recovers_ou_time_constant(measure):
    tau, floor, noise = 4.0, 0.3, 0.3
    ds = ou_population(
        n_times=12,
        n_units=150,
        n_stimuli=16,
        n_members=2,
        tau=tau,
        floor=floor,
        noise=noise,
        seed=3,
    )
    fit = fit_drift(ds, measure=measure, n_boot=60, seed=1)
    lo, hi = fit["tau_d_ci"].values
    assert lo < tau < hi
    assert hi - lo < 0.5 * tau  # informative interval
    assert fit["tau_d"].item() == pytest.approx(tau, rel=0.2)
    if measure == "pv":
        c_lo, c_hi = fit["c_inf_ci"].values
        true_floor = expected_pv_correlation(np.inf, tau, floor, noise)
        assert c_lo < true_floor < c_hi
        curve = fit["curve"]
        expected = expected_pv_correlation(curve["elapsed"].values, tau, floor, noise)
        np.testing.assert_allclose(curve.values, expected, atol=0.05)
    assert fit["fitted"].dims == ("elapsed",)


def test_fit_keeps_unpooled_batch_dims():
    ds = ou_population(n_times=6, n_units=60, n_stimuli=8, n_members=3, tau=2.0, seed=4)
    stacked = xr.concat([ds["activity"], ds["activity"] * 2.0], dim="layer")
    fit = fit_drift(stacked.transpose("time", "layer", ...), n_boot=5)
    assert fit["tau_d"].dims == ("layer",)
    assert fit["tau_d_ci"].dims == ("layer", "bound")
    # activity scaled by 2 in layer 1: identical correlations
    assert fit["tau_d"].values[0] == pytest.approx(fit["tau_d"].values[1])


def test_drift_curve_irregular_times_binned():
    times = np.sort(np.random.default_rng(5).uniform(0, 30, 15))
    ds = ou_population(times=times, n_units=80, n_stimuli=10, tau=8.0, seed=6)
    curve = drift_curve(ds, bins=6)
    assert curve.sizes["elapsed"] == 6
    assert (np.diff(curve["similarity"].values) < 0.05).all()  # decreasing up to noise
    assert curve["elapsed"].attrs["units"] == "days"


def test_decomposition_identity_and_pure_changes():
    rng = np.random.default_rng(7)
    u, s = 200, 12
    rate = rng.normal(size=(u, 1)) + 3
    tuning = rng.normal(size=(u, s))
    tuning -= tuning.mean(1, keepdims=True)
    new_rate = rng.normal(size=(u, 1)) + 3
    new_tuning = rng.normal(size=(u, s))
    new_tuning -= new_tuning.mean(1, keepdims=True)
    x = np.stack([rate + tuning, new_rate + tuning, rate + new_tuning])  # time 1: rates only
    da = xr.DataArray(x, dims=("time", "unit", "stimulus"))
    d = decompose_pv_decorrelation(da)
    total = d["rate_term"] + d["tuning_term"] + d["share_term"]
    np.testing.assert_allclose(total.values, d["decorrelation"].values, atol=1e-12)
    assert d["tuning_term"].values[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert d["rate_term"].values[0, 1] > 0.01
    assert d["rate_term"].values[0, 2] == pytest.approx(0.0, abs=1e-12)
    assert d["tuning_term"].values[0, 2] > 0.3
    # pooled correlation: mean over stimuli of covariances over mean variances
    xc = x - x.mean(1, keepdims=True)
    cov = (xc[0] * xc[1]).mean(0).mean()
    ref = cov / np.sqrt((xc[0] ** 2).mean(0).mean() * (xc[1] ** 2).mean(0).mean())
    assert d["pooled_correlation"].values[0, 1] == pytest.approx(ref, abs=1e-12)
    assert (d["n_units"].values == u).all()


def test_normalised_and_rate_change_index():
    x = xr.DataArray([[1.0, 3.0, 0.0]], dims=("unit", "time"), coords={"time": [0, 1, 2]})
    idx = normalised_index(x)
    assert idx.sel(time=1, time_ref=0).item() == pytest.approx(0.5)
    assert idx.sel(time=0, time_ref=2).item() == pytest.approx(1.0)
    assert np.isnan(idx.sel(time=2, time_ref=2).item())
    ds = ou_population(n_times=4, n_units=20, n_stimuli=5, baseline=10.0, seed=8)
    rc = rate_change_index(ds)
    rates = ds["activity"].mean("stimulus").values  # (time, unit)
    ref = (rates[3] - rates[0]) / (rates[3] + rates[0])
    np.testing.assert_allclose(rc["index"].isel(time=3, time_ref=0).values, ref)
    assert rc["mean_abs_index"].isel(time=3, time_ref=0).item() == pytest.approx(np.abs(ref).mean())


def test_drift_index_zero_without_drift_positive_with():
    stable = ou_population(n_times=4, n_units=100, n_stimuli=10, n_trials=6, tau=1e9, seed=9)
    drifting = ou_population(n_times=4, n_units=100, n_stimuli=10, n_trials=6, tau=1.5, seed=9)
    a = drift_index(stable)["index"].values
    b = drift_index(drifting)["index"].values
    off = ~np.eye(4, dtype=bool)
    assert np.abs(a[off]).max() < 0.05
    assert b[0, 1] > 0.1 and b[0, 3] > b[0, 1]
    with pytest.raises(ValueError, match="trial"):
        drift_index(stable.isel(trial=0))


def test_fraction_stable_matches_direct():
    ds = ou_population(n_times=5, n_units=40, n_stimuli=10, tau=3.0, seed=10)
    r = tuning_correlation(ds)["correlation"].values  # (unit, time, time_ref)
    res = fraction_stable(ds, threshold=0.5)
    lag1 = [(i + 1, i) for i in range(4)] + [(i, i + 1) for i in range(4)]
    ref = np.mean([np.mean(r[:, i, j] > 0.5) for i, j in lag1])
    assert res["fraction"].sel(elapsed=1.0).item() == pytest.approx(ref)
    surv = fraction_stable(ds, threshold=0.5, reference=0.0)["fraction"].values
    above = r[:, :, 0] > 0.5  # (unit, time)
    np.testing.assert_allclose(surv, np.cumprod(above, axis=1).mean(0))
