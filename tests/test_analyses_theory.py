"""Theory beside data: NDK predictions next to a tiny simulated ensemble, in standard errors.

Why the bounds hold: members are independent, so ``z = (measured - theory) / SE`` with the
member-wise SE is close to standard normal when the theory is right and the finite-width
corrections are small against SE. The tiny run keeps the finite-width load near 0.05
(``sigma2 = 2``, six balanced training targets), so over the ~2400 kernel comparisons the
largest |z| stays below the two-sided Bonferroni bound (about 5 at family alpha 1e-3)
and the root-mean-square z near 1. A configuration with another temperature predicts
another drift rate and mean output, which the same yardstick reveals as |z| in the tens.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from analyses_runs import tiny_config, tiny_run

from analyses.theory import (
    bonferroni_z,
    finite_width_load,
    fixed_decoder_beside_theory,
    frozen_readout_beside_theory,
    run_stimuli,
    theory_beside_data,
)
from drift.config import load_config
from drift.datasets import load_dataset
from drift.simulate import simulate


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def beside():
    return theory_beside_data(tiny_run())


def _with_config(run, **changes):
    bad = run.copy()
    tree = yaml.safe_load(run.attrs["config"])
    for key, value in changes.items():
        section, name = key.split(".")
        tree[section][name] = value
    bad.attrs = {**run.attrs, "config": yaml.safe_dump(tree)}
    return bad


def assert_within_error(ds, quantities):
    for q in quantities:
        z = ds[f"{q}_z"].values
        assert np.isfinite(z).all(), q
        limit = float(ds["z_limit"].sel(quantity=q))
        assert float(ds["max_abs_z"].sel(quantity=q)) == pytest.approx(np.abs(z).max())
        assert np.abs(z).max() <= limit, f"{q}: max |z| {np.abs(z).max():.2f} > {limit:.2f}"
        assert float(ds["rms_z"].sel(quantity=q)) < 1.5, f"{q}: systematic deviation"


def test_theory_beside_data_agrees_within_monte_carlo_error(beside):
    ds, run = beside, tiny_run()
    assert ds.sizes["time"] == run.sizes["time"] and ds.sizes["layer"] == 2
    assert ds["kernel_measured"].dims == ("time", "layer", "stimulus", "stimulus_ref")
    assert ds.attrs["finite_width_load"] < 0.1
    assert_within_error(ds, ["output", "output_variance", "kernel", "same_time_kernel"])
    assert ds.attrs["max_abs_z"] == pytest.approx(float(ds["max_abs_z"].max()))
    assert ds.attrs["max_abs_z"] < 5.1
    # the measurement is what it says: ensemble mean and member SE of the output
    out = run["output"].values.astype(float)
    np.testing.assert_allclose(ds["output_measured"], out.mean(1), rtol=1e-6)
    np.testing.assert_allclose(ds["output_se"], out.std(1, ddof=1) / np.sqrt(48), rtol=1e-6)
    # autocorrelation is the diagonal of the two-time kernel; at t_ref = t it is same-time
    diag = np.einsum("tlss->tls", ds["kernel_measured"].values)
    np.testing.assert_allclose(ds["autocorrelation_measured"], diag)
    np.testing.assert_allclose(ds["kernel_theory"].isel(time=0),
                               ds["same_time_kernel_theory"].isel(time=0))
    # the hidden representation drifts: the two-time kernel decays from its t_ref value
    auto = ds["autocorrelation_theory"].mean("stimulus")
    assert (auto.isel(time=-1) < 0.9 * auto.isel(time=0)).all()
    # accuracy: the ensemble learns the training set like the theory says
    acc = ds["accuracy_measured"].sel(split_name="train")
    assert acc[0] < 0.8 and acc[-1] > 0.95
    assert ds["accuracy_theory"].sel(split_name="train")[-1] == 1.0
    # one member's accuracy follows from the predicted output mean and variance
    np.testing.assert_allclose(ds["accuracy_measured"], ds["accuracy_expected"], atol=0.08)


def test_wrong_configuration_gives_large_z():
    ds = theory_beside_data(_with_config(tiny_run(), **{"dynamics.temperature": 0.4}),
                            variance=False)
    assert float(ds["max_abs_z"].sel(quantity="kernel")) > 8
    assert float(ds["max_abs_z"].sel(quantity="same_time_kernel")) > 8
    assert ds.attrs["max_abs_z"] > 8


def test_reference_time_and_layer_selection():
    run = tiny_run()
    ds = theory_beside_data(run, reference_time=5.0, layers=1, stimuli=[0, 2, 7],
                            variance=False)
    assert "output_variance_z" not in ds
    assert ds["stimulus"].values.tolist() == [0, 2, 7] and ds.sizes["stimulus_ref"] == 3
    full = theory_beside_data(run, reference_time=5.0, layers=1, variance=False)
    np.testing.assert_allclose(ds["kernel_measured"],
                               full["kernel_measured"].isel(stimulus=[0, 2, 7],
                                                            stimulus_ref=[0, 2, 7]))
    np.testing.assert_allclose(ds["kernel_theory"],
                               full["kernel_theory"].isel(stimulus=[0, 2, 7],
                                                          stimulus_ref=[0, 2, 7]))
    np.testing.assert_allclose(ds["accuracy_measured"], full["accuracy_measured"])
    t_ref = ds.attrs["reference_time"]
    assert t_ref == pytest.approx(float(run.time[np.abs(run.time.values - 5.0).argmin()]))
    assert ds["layer"].values.tolist() == [1]
    at_ref = ds.sel(time=t_ref)
    np.testing.assert_allclose(at_ref["kernel_measured"], at_ref["same_time_kernel_measured"])
    with pytest.raises(ValueError, match="not recorded"):
        theory_beside_data(run, layers=[3])
    with pytest.raises(ValueError, match="stimuli"):
        theory_beside_data(run, stimuli=[0, 9])


def test_bad_input_names_the_argument():
    run = tiny_run()
    with pytest.raises(ValueError, match="run"):
        theory_beside_data(run.isel(member=0, drop=True))
    with pytest.raises(ValueError, match="run"):
        theory_beside_data(run.drop_vars("output"))
    no_cfg = run.copy()
    no_cfg.attrs = {k: v for k, v in run.attrs.items() if k != "config"}
    with pytest.raises(ValueError, match="config"):
        theory_beside_data(no_cfg)


def test_run_stimuli_rebuilds_and_checks_the_arrays():
    run = tiny_run()
    data = load_dataset(load_config(tiny_config()).data)
    got = run_stimuli(run)
    np.testing.assert_array_equal(got.x_train, data.x_train)
    np.testing.assert_array_equal(got.y_test, data.y_test)
    explicit = run.copy()
    explicit.attrs = {**run.attrs, "data_name": "arrays"}
    with pytest.raises(ValueError, match="explicit arrays"):
        run_stimuli(explicit)
    same = run_stimuli(explicit, x_train=data.x_train, x_test=data.x_test)
    np.testing.assert_array_equal(same.x_test, data.x_test)
    with pytest.raises(ValueError, match="data_sha256"):
        run_stimuli(explicit, x_train=data.x_train * 1.01, x_test=data.x_test)
    with pytest.raises(ValueError, match="rows"):
        run_stimuli(explicit, x_train=data.x_train[:4], x_test=data.x_test)


def test_fixed_decoder_beside_theory():
    run = tiny_run()
    ds = fixed_decoder_beside_theory(run, 5.0, layer=2, alpha=0.1)
    assert ds.attrs["layer"] == 2 and ds.attrs["accuracy_stimuli"] == "test"
    nearest = float(run.time[np.abs(run.time.values - 5.0).argmin()])
    assert ds.attrs["fit_time"] == pytest.approx(nearest)
    assert ds["decoder_measured"].dims == ("time", "stimulus")
    assert_within_error(ds, ["decoder"])
    # at the fitting time the decoder reproduces the training targets up to the ridge
    fit = ds.sel(time=ds.attrs["fit_time"])
    train = fit["split"] == "train"
    assert np.all(np.sign(fit["decoder_theory"].where(train, drop=True))
                  == fit["target"].where(train, drop=True))
    assert ds["accuracy_measured"].dims == ("time",)
    with pytest.raises(ValueError, match="alpha"):
        fixed_decoder_beside_theory(run, 5.0, alpha=0.0)


def test_frozen_readout_simulated_from_a_config():
    cfg = tiny_config(**{"ensemble.members": 32})
    ds = frozen_readout_beside_theory(cfg, 5.0, [5.0, 8.0, 12.0, 18.0], seed=3)
    assert ds.attrs["freeze_time"] == pytest.approx(5.0) and ds.attrs["members"] == 32
    np.testing.assert_allclose(ds.time, [5.0, 8.0, 12.0, 18.0])
    assert_within_error(ds, ["output"])
    # frozen = learning at t0; afterwards the frozen output decays, the learned one stays
    first, last = ds.isel(time=0), ds.isel(time=-1)
    np.testing.assert_allclose(first["output_theory"], first["output_learning_theory"],
                               atol=1e-2)
    train = ds["split"] == "train"
    frozen_drop = abs(first["output_theory"] - last["output_theory"]).where(train).mean()
    learned_drop = abs(first["output_learning_theory"]
                       - last["output_learning_theory"]).where(train).mean()
    assert frozen_drop > 3 * learned_drop


def test_frozen_readout_of_a_frozen_run():
    cfg = tiny_config(**{"ensemble.members": 16, "network.width": 64, "dynamics.duration": 9.0})
    cfg["record"] = {"times": [0.0, 3.0, 6.0, 9.0], "units": 1}
    frozen = simulate(cfg, progress=False, freeze_readout_at=3.0)
    ds = frozen_readout_beside_theory(frozen)
    np.testing.assert_allclose(ds.time, [3.0, 6.0, 9.0])
    assert float(ds["max_abs_z"].sel(quantity="output")) <= bonferroni_z(ds["output_z"].size)
    with pytest.raises(ValueError, match="freeze_readout_at"):
        frozen_readout_beside_theory(frozen, t0=6.0)
    with pytest.raises(ValueError, match="t0 is required"):
        frozen_readout_beside_theory(tiny_run())


def test_plot_theory_beside_data(beside):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analyses.plots import plot_theory_beside_data

    fig = plot_theory_beside_data(beside, stimuli=[0, 6])
    try:
        assert len(fig.axes) == 3
        assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert "stimulus 6 (test)" in labels and "NDK theory" in labels
    finally:
        plt.close(fig)


def test_helpers():
    assert bonferroni_z(1) == pytest.approx(3.29, abs=0.01)
    assert bonferroni_z(1000) == pytest.approx(4.89, abs=0.01)
    data = load_dataset(load_config(tiny_config()).data)
    kw = dict(depth=2, activation="relu", temperature=0.1, prior_variance=2.0)
    load = finite_width_load(data.x_train, data.y_train, 128, **kw)
    assert 0 < load < 0.1
    assert finite_width_load(data.x_train, data.y_train, 256, **kw) == pytest.approx(load / 2)
