"""The run configuration: validation with clear errors, defaults, datasets."""

import numpy as np
import pytest
import yaml

from drift.config import ConfigError, config_to_yaml, default_config, load_config
from drift.datasets import load_dataset
from drift.schedule import snapshot_times


def test_defaults_round_trip_through_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(config_to_yaml(default_config()))
    assert load_config(path) == default_config()


def test_packaged_default_equals_built_in_default():
    from importlib.resources import files

    text = files("drift").joinpath("configs/default.yaml").read_text()
    assert load_config(yaml.safe_load(text)) == default_config()


@pytest.mark.parametrize(
    "tree, key",
    [
        ({"dynamics": {"temperature": -1}}, "dynamics.temperature"),
        ({"dynamics": {"prior_variance": 0}}, "dynamics.prior_variance"),
        ({"dynamics": {"init_variance": -0.1}}, "dynamics.init_variance"),
        ({"network": {"depth": 0}}, "network.depth"),
        ({"network": {"activation": "gelu"}}, "network.activation"),
        ({"data": {"name": "cifar"}}, "data.name"),
        ({"data": {"name": "digits", "task": "3 and 3"}}, "data.task"),
        ({"record": {"times": [1.0, 0.5]}}, "record.times"),
        ({"record": {"layers": [3]}}, "record.layers"),
        ({"dynamics": {"temprature": 1}}, "dynamics.temprature"),
        ({"dynamics": {"dt": float("nan")}}, "dynamics.dt"),
    ],
)
def test_bad_values_name_their_key(tree, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(tree)


def test_config_errors_are_value_errors_and_overrides_apply():
    assert issubclass(ConfigError, ValueError)
    cfg = load_config(None, overrides={"dynamics.temperature": 0.2, "network.depth": 3})
    assert cfg.dynamics.temperature == 0.2 and cfg.network.depth == 3
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("no/such/file.yaml")


@pytest.mark.parametrize("name, task", [("synthetic", "sign"), ("synthetic", "teacher"),
                                        ("digits", "0 vs 1"), ("mnist", "4 vs 9")])
def test_builtin_datasets_are_normalised(name, task):
    cfg = load_config({"data": {"name": name, "task": task, "n_train": 30, "n_test": 10}})
    d = load_dataset(cfg.data)
    assert d.x_train.shape[0] == 30 and d.x_test.shape[0] == 10
    assert np.mean(np.sum(d.x_train**2, axis=1)) / d.input_dim == pytest.approx(1.0)
    if task != "teacher":
        assert set(np.unique(d.y_train)) <= {-1.0, 1.0}


def test_norm_differences_are_kept_by_dataset_normalisation():
    cfg = load_config({"data": {"name": "digits", "task": "0 vs 1", "n_train": 100}})
    d = load_dataset(cfg.data)
    norms = np.linalg.norm(d.x_train, axis=1)
    assert abs(norms[d.y_train > 0].mean() - norms[d.y_train < 0].mean()) > 0.05 * norms.mean()


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=rng.standard_normal((7, 4)), y_train=np.ones(7),
             x_test=rng.standard_normal((3, 4)), y_test=-np.ones(3))
    d = load_dataset(load_config({"data": {"name": "npz", "path": str(path)}}).data)
    assert d.x_train.shape == (7, 4) and d.x_test.shape == (3, 4)
    np.savez(path, x_train=rng.standard_normal((7, 4)), y_train=np.ones(6),
             x_test=rng.standard_normal((3, 4)), y_test=-np.ones(3))
    with pytest.raises(ValueError, match="y_train"):
        load_dataset(load_config({"data": {"name": "npz", "path": str(path)}}).data)
    with pytest.raises(ValueError, match="data.path"):
        load_dataset(load_config({"data": {"name": "npz", "path": str(tmp_path / "x.npz")}}).data)


def test_snapshot_schedule_sees_both_phases():
    t = snapshot_times(1000.0, n_times=100, first_time=0.01)
    assert t[0] == 0 and t[-1] == pytest.approx(1000.0) and np.all(np.diff(t) > 0)
    assert np.sum(t < 1.0) > 30 and np.sum(t > 100.0) > 10
    assert list(snapshot_times(10.0, times=[1.0, 5.0])) == [0.0, 1.0, 5.0]
    with pytest.raises(ValueError, match="times"):
        snapshot_times(10.0, times=[5.0, 1.0])
