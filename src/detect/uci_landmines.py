"""UCI "Land Mines" (id 763): real fluxgate magnetic-anomaly measurements, 5 classes.

Yilmaz, Kahraman & Söyler (2018), IEEE Access, doi:10.1109/ACCESS.2018.2866538. Columns
(all normalised to 0-1 by the authors): V = sensor output voltage, H = sensor height above
ground (12 levels), S = soil type (6 moisture classes coded 0, 0.2, ..., 1), M = class
(1 no mine, 2 anti-tank, 3 anti-personnel, 4 booby-trapped AP, 5 M14 AP).

This is a small real-sensor benchmark for the metal/magnetic branch: 5-class accuracy under
stratified k-fold cross-validation, against the published best of 85.8 %. Classifiers here
are deliberately small (kNN in numpy, an MLP in torch); everything is seeded.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CLASS_NAMES: tuple[str, ...] = (
    "no_mine",
    "anti_tank",
    "anti_personnel",
    "booby_trapped_ap",
    "m14_ap",
)
PUBLISHED_BEST_ACCURACY = 0.858
SOIL_LEVELS = 6


class UciDataError(ValueError):
    """The CSV is not the UCI Land Mines table; the message names the file and row."""


@dataclass(frozen=True)
class UciData:
    voltage: np.ndarray  # V, normalised
    height: np.ndarray  # H, normalised
    soil: np.ndarray  # S as an integer 0..5
    label: np.ndarray  # 0..4 (M - 1)

    def __len__(self) -> int:
        return int(self.label.size)


def load_csv(path: str | Path) -> UciData:
    """Read ``Mine_Dataset.csv`` (columns V,H,S,M; a UTF-8 BOM is allowed)."""
    p = Path(path)
    if not p.is_file():
        raise UciDataError(f"{p}: file not found")
    with p.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise UciDataError(f"{p}: empty file")
    header = [c.strip().upper() for c in rows[0]]
    if header[:4] != ["V", "H", "S", "M"]:
        raise UciDataError(f"{p}: header is {rows[0]!r}, expected V,H,S,M")
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    vals = np.empty((len(body), 4), dtype=np.float64)
    for i, r in enumerate(body):
        try:
            vals[i] = [float(c) for c in r[:4]]
        except ValueError:
            raise UciDataError(f"{p}: row {i + 2} is not four numbers: {r!r}") from None
    if not np.all(np.isfinite(vals)):
        raise UciDataError(f"{p}: non-finite value")
    bad = np.flatnonzero((vals[:, :3] < 0).any(axis=1) | (vals[:, :3] > 1).any(axis=1))
    if bad.size:
        raise UciDataError(f"{p}: row {bad[0] + 2} has V/H/S outside [0, 1]")
    m = vals[:, 3]
    if not np.all(np.isin(m, [1, 2, 3, 4, 5])):
        bad_row = int(np.flatnonzero(~np.isin(m, [1, 2, 3, 4, 5]))[0]) + 2
        raise UciDataError(f"{p}: row {bad_row} has class M outside 1..5")
    soil = np.rint(vals[:, 2] * (SOIL_LEVELS - 1)).astype(np.int64)
    return UciData(vals[:, 0], vals[:, 1], soil, m.astype(np.int64) - 1)


def stratified_folds(label: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Test-index sets of a stratified k-fold split: each class spread evenly over the folds."""
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(label.size, dtype=np.int64)
    offset = 0
    for c in np.unique(label):
        idx = rng.permutation(np.flatnonzero(label == c))
        fold_of[idx] = (np.arange(idx.size) + offset) % k
        offset += idx.size
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def features(d: UciData) -> np.ndarray:
    """V, H and one-hot soil (soil is a category: moisture, not an ordered quantity)."""
    onehot = np.eye(SOIL_LEVELS)[d.soil]
    return np.column_stack([d.voltage, d.height, onehot])


# --------------------------------------------------------------------------- classifiers

Fit = Callable[[UciData, np.ndarray, np.ndarray, int], np.ndarray]
"""fit-and-predict: (data, train index, test index, seed) -> predicted labels of the test rows."""


def knn_predict(
    d: UciData, train: np.ndarray, test: np.ndarray, seed: int, k: int = 5
) -> np.ndarray:
    """k nearest neighbours on z-scored (V, H, S); a vote tie goes to the nearest one's class."""
    del seed
    x = np.column_stack([d.voltage, d.height, d.soil.astype(np.float64)])
    x = (x - x[train].mean(0)) / np.maximum(x[train].std(0), 1e-12)
    d2 = ((x[test][:, None, :] - x[train][None, :, :]) ** 2).sum(axis=2)
    nn = np.argsort(d2, axis=1, kind="stable")[:, :k]
    lab = d.label[train][nn]
    votes = np.zeros((test.size, len(CLASS_NAMES)))
    np.add.at(votes, (np.arange(test.size)[:, None], lab), 1.0)
    votes[np.arange(test.size), lab[:, 0]] += 0.5
    return votes.argmax(axis=1)


def _curve_design(d: UciData, idx: np.ndarray, degree: int) -> np.ndarray:
    h = d.height[idx]
    soil = np.eye(SOIL_LEVELS)[d.soil[idx]][:, 1:]
    return np.column_stack([h[:, None] ** np.arange(degree + 1), soil, soil * h[:, None]])


def curve_predict(
    d: UciData, train: np.ndarray, test: np.ndarray, seed: int, degree: int = 2
) -> np.ndarray:
    """Generative model with the physics' shape: each class has its own anomaly-versus-height
    curve V_c(H) (a polynomial), shifted and tilted per soil; the residual is Gaussian with a
    per-class sigma. Predict the class of highest likelihood of the measured V."""
    del seed
    loglik = np.empty((test.size, len(CLASS_NAMES)))
    a_test = _curve_design(d, test, degree)
    for c in range(len(CLASS_NAMES)):
        rows = train[d.label[train] == c]
        a = _curve_design(d, rows, degree)
        coef, *_ = np.linalg.lstsq(a, d.voltage[rows], rcond=None)
        sigma = max(float(np.std(d.voltage[rows] - a @ coef)), 1e-6)
        z = (d.voltage[test] - a_test @ coef) / sigma
        loglik[:, c] = -0.5 * z**2 - math.log(sigma)
    return loglik.argmax(axis=1)


def mlp_predict(
    d: UciData,
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
    hidden: int = 64,
    epochs: int = 1500,
    lr: float = 0.01,
    weight_decay: float = 1e-4,
) -> np.ndarray:
    """A two-hidden-layer MLP on V, H and one-hot soil, full-batch Adam, seeded."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(features(d), dtype=torch.float32)
    y = torch.as_tensor(d.label, dtype=torch.long)
    mu = x[train].mean(0)
    sd = x[train].std(0).clamp_min(1e-6)
    x = (x - mu) / sd
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, len(CLASS_NAMES)),
    )
    with torch.no_grad():
        for prm in net.parameters():
            if prm.ndim == 2:
                bound = 1.0 / math.sqrt(prm.shape[1])
                prm.copy_(torch.rand(prm.shape, generator=gen) * 2 * bound - bound)
            else:
                prm.zero_()
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    xt, yt = x[train], y[train]
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net(x[test]).argmax(1).numpy()


def majority_predict(d: UciData, train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    del seed
    return np.full(test.size, np.bincount(d.label[train]).argmax())


CLASSIFIERS: dict[str, Fit] = {
    "majority": majority_predict,
    "knn5": knn_predict,
    "curve": curve_predict,
    "mlp": mlp_predict,
}


@dataclass(frozen=True)
class CvResult:
    name: str
    accuracy: float
    fold_accuracy: np.ndarray
    confusion: np.ndarray  # rows true, columns predicted

    @property
    def accuracy_std(self) -> float:
        return float(self.fold_accuracy.std(ddof=1)) if self.fold_accuracy.size > 1 else 0.0


def cross_validate(d: UciData, fit: Fit, k: int = 10, seed: int = 0, name: str = "") -> CvResult:
    """Stratified k-fold accuracy (pooled over all rows) and the pooled confusion matrix."""
    n_cls = len(CLASS_NAMES)
    conf = np.zeros((n_cls, n_cls), dtype=np.int64)
    folds = stratified_folds(d.label, k, seed)
    fold_acc = []
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(len(d)), test)
        pred = fit(d, train, test, seed + f)
        np.add.at(conf, (d.label[test], pred), 1)
        fold_acc.append(float(np.mean(pred == d.label[test])))
    return CvResult(name, float(np.trace(conf) / conf.sum()), np.array(fold_acc), conf)
