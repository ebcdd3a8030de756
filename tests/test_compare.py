"""Model beside brain: a planted-drift recording next to a tiny simulated ensemble."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from analyses_runs import tiny_config, tiny_run  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analyses.compare import compare_model_to_recording, theory_pv_correlation  # noqa: E402
from analyses.drift_rates import fit_drift  # noqa: E402
from drift.config import load_config  # noqa: E402
from drift.datasets import load_dataset  # noqa: E402
from drift.io import from_sessions, synthetic_recording  # noqa: E402

PLANTED_TAU_DAYS = 6.0


@pytest.fixture(scope="module")
def recording():
    rec = synthetic_recording(n_sessions=6, n_units=120, n_stimuli=8,
                              drift_time_days=PLANTED_TAU_DAYS, floor=0.3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sessions with a stimulus never shown while running
        return from_sessions(rec.sessions, rec.registration, units="dF/F")


@pytest.fixture(scope="module")
def compared(recording):
    ds, fig = compare_model_to_recording(recording, tiny_run(), n_boot=20, seed=0)
    yield ds, fig
    plt.close(fig)


def test_mapping_is_the_ratio_of_the_fitted_time_constants(recording, compared):
    ds, _ = compared
    run = tiny_run()
    fit_rec = fit_drift(recording["activity"].mean("trial"), "pv", n_boot=20, seed=0)
    window = run.time.values[run.time.values >= ds.attrs["diffusive_start"]]
    assert window.size >= 4 and window[0] > 0
    np.testing.assert_array_equal(ds.attrs["model_times"], window)
    fit_mod = fit_drift(run["activity"].sel(layer=2, time=window), "pv", n_boot=20, seed=0)
    tau_rec, tau_mod = float(fit_rec["tau_d"]), float(fit_mod["tau_d"])
    assert float(ds["tau_recording"]) == pytest.approx(tau_rec, rel=1e-4)
    assert float(ds["tau_model"]) == pytest.approx(tau_mod, rel=1e-4)
    assert float(ds["days_per_model_time"]) == pytest.approx(tau_rec / tau_mod, rel=1e-4)
    lo, hi = ds["days_per_model_time_ci"].values
    assert lo <= float(ds["days_per_model_time"]) <= hi
    np.testing.assert_allclose(ds["elapsed_model_days"],
                               ds["elapsed_model"] * float(ds["days_per_model_time"]))
    # the planted time constant is recovered roughly (six sessions, bootstrap over units)
    assert PLANTED_TAU_DAYS / 2 < tau_rec < PLANTED_TAU_DAYS * 1.5
    assert f"{tau_rec / tau_mod:.4g} days" in ds.attrs["mapping"]


def test_both_curves_and_the_theory_are_returned(compared):
    ds, _ = compared
    for name in ("pv_recording", "pv_recording_fit", "rsa_recording", "decoder_recording",
                 "decoder_recording_normalised"):
        assert ds[name].dims == ("elapsed_recording",)
        assert np.isfinite(ds[name].values).all(), name
    for name in ("pv_model", "pv_model_se", "pv_model_fit", "pv_theory", "rsa_model",
                 "decoder_model", "decoder_model_normalised"):
        assert ds[name].dims == ("elapsed_model",)
        assert np.isfinite(ds[name].values).all(), name
    assert ds["elapsed_recording"][0] == 0 and ds["pv_recording"][0] == pytest.approx(1.0)
    np.testing.assert_allclose(ds["elapsed_recording"][1:], [2.0, 4.0, 6.0, 8.0, 10.0])
    # the drift is visible in both systems
    assert ds["pv_recording"][-1] < 0.8 and ds["pv_model"][-1] < 0.5
    # the NDK prediction (exact at infinite width) follows the measured PV correlation
    assert np.abs(ds["pv_theory"] - ds["pv_model"]).max() < 0.05
    assert float(ds["tau_theory"]) == pytest.approx(float(ds["tau_model"]), rel=0.25)
    # stimulus identity is decoded from pooled trials, the model's target from its units
    assert "groups of trials" in ds.attrs["recording_decoder"]
    assert ds["decoder_model"][0] > ds["decoder_model"][-1]


def test_figure_has_three_labelled_panels(compared):
    ds, fig = compared
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert "days" in ax.get_xlabel()
        assert ax.get_ylabel()
        assert ax.get_legend() is not None
    assert f"{float(ds['days_per_model_time']):.3g} days" in fig._suptitle.get_text()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("NDK" in t for t in labels) and any("recording" in t for t in labels)


def test_recording_without_trials_falls_back_to_template_matching(recording):
    rec = recording.mean("trial").assign_attrs(recording.attrs)
    ds, fig = compare_model_to_recording(rec, tiny_run(), n_boot=0, theory=False,
                                         diffusive_start=2.0)
    plt.close(fig)
    assert ds.attrs["recording_decoder"] == "template matching of stimulus identity"
    assert "pv_theory" not in ds and np.isnan(float(ds["tau_theory"]))
    assert ds.attrs["diffusive_start"] == 2.0
    assert np.isnan(ds["days_per_model_time_ci"].values).all()  # no bootstrap


def test_bad_input_names_the_argument(recording):
    run = tiny_run()
    with pytest.raises(ValueError, match="recording"):
        compare_model_to_recording(recording.rename(unit="cell"), run, n_boot=0)
    with pytest.raises(ValueError, match="recording"):
        compare_model_to_recording(recording["activity"].isel(stimulus=0), run, n_boot=0)
    with pytest.raises(ValueError, match="recording"):
        compare_model_to_recording(recording.isel(time=slice(0, 3)), run, n_boot=0)
    with pytest.raises(ValueError, match="recording"):
        compare_model_to_recording(run, run, n_boot=0)
    with pytest.raises(ValueError, match="recording"):
        compare_model_to_recording(np.zeros((3, 4, 5)), run, n_boot=0)
    with pytest.raises(ValueError, match="run"):
        compare_model_to_recording(recording, recording, n_boot=0)
    with pytest.raises(ValueError, match="diffusive_start"):
        compare_model_to_recording(recording, run, n_boot=0, diffusive_start=25.0)
    with pytest.raises(ValueError, match="layer"):
        compare_model_to_recording(recording, run, n_boot=0, layer=3)


def test_theory_pv_correlation_properties():
    data = load_dataset(load_config(tiny_config()).data)
    x = np.concatenate([data.x_train, data.x_test])
    times = np.array([2.0, 5.0, 10.0, 20.0])
    kw = dict(depth=2, activation="relu", temperature=0.1, prior_variance=2.0,
              init_variance=1.0)
    r1 = theory_pv_correlation(x, times, layer=1, **kw)
    r2 = theory_pv_correlation(x, times, layer=2, per_stimulus=True, **kw)
    assert r1.dims == ("time", "time_ref") and r2.dims == ("stimulus", "time", "time_ref")
    np.testing.assert_allclose(np.diagonal(r1.values), 1.0, atol=1e-9)
    np.testing.assert_allclose(r2.values, np.swapaxes(r2.values, 1, 2))
    # correlation decays with elapsed time; the deeper layer decorrelates faster
    assert r1.values[0, 1] > r1.values[0, 3] > 0
    assert (r2.mean("stimulus").values[0, 1:] < r1.values[0, 1:]).all()
