"""Figures: each returns a Figure with the expected content and never shows it."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analyses import plots  # noqa: E402
from analyses.drift_rates import drift_curve, fit_drift, pv_correlation  # noqa: E402
from analyses.readout import (  # noqa: E402
    cross_temporal_decoding,
    fixed_decoder,
    retrained_decoder,
)
from analyses.similarity import rsa, rsm  # noqa: E402
from analyses.synthetic import expected_pv_correlation, ou_population  # noqa: E402


@pytest.fixture(scope="module")
def ds():
    return ou_population(n_times=6, n_units=50, n_stimuli=12, n_members=2, kappa=0.4, seed=0)


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("plt.show() must not be called")

    monkeypatch.setattr(plt, "show", fail)
    yield
    plt.close("all")


def test_drift_curve_with_fit_and_theory(ds):
    fit = fit_drift(ds, n_boot=10)
    el = np.linspace(0.5, 5, 20)
    theory = xr.DataArray(
        expected_pv_correlation(el, 5.0, 0.3, 0.3), dims="elapsed", coords={"elapsed": el}
    )
    fig = plots.plot_drift_curve(drift_curve(ds), fit=fit, theory=theory)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "data" in labels and "theory" in labels
    assert any(lab.startswith("fit:") for lab in labels)
    assert ax.get_xlabel() == "elapsed time (days)"
    # the member dim is averaged, with a standard-error band
    assert len(ax.collections) >= 1


def test_drift_curve_accepts_fit_curve_and_axes(ds):
    fig, ax = plt.subplots()
    fit = fit_drift(ds, n_boot=0)
    out = plots.plot_drift_curve(fit, ax=ax)
    assert out is fig
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), fit["curve"].values)


def test_rsm_panels(ds):
    fig = plots.plot_rsm(rsm(ds), times=[0, 2, 5], ncols=2)
    assert isinstance(fig, Figure)
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles == ["t = 0 (days)", "t = 2 (days)", "t = 5 (days)"]


def test_rsa_and_cross_temporal_heatmaps(ds):
    fig = plots.plot_rsa_matrix(rsa(ds))
    assert isinstance(fig, Figure) and fig.axes[0].get_xlabel() == "time (days)"
    fig2 = plots.plot_rsa_matrix(pv_correlation(ds))
    assert isinstance(fig2, Figure)
    fig3 = plots.plot_cross_temporal(cross_temporal_decoding(ds))
    assert fig3.axes[0].get_ylabel() == "test time (days)"
    assert fig3.axes[0].collections[0].get_clim()[0] == 0.5  # chance level


def test_decoders_plot(ds):
    theory = xr.DataArray(np.linspace(1, 0.6, 6), dims="time", coords={"time": ds["time"].values})
    fig = plots.plot_decoders(fixed_decoder(ds), retrained_decoder(ds), theory=theory)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    for name in ("fixed decoder", "retrained decoder", "theory (fixed)", "chance"):
        assert name in labels
