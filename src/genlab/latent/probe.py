"""Linear probes: how useful are a model's codes as features when labels are few?

For each label budget (k labelled images per class, drawn with a seed from the TRAIN split, or
all of them), a logistic regression is fitted on the labelled images' features and scored on
every image of the TEST split, which the probe never trains on. Three kinds of features are
compared at the same label budget and seeds: the model's codes, the raw pixels, and PCA
features of the code's width (PCA fitted on all training images, without their labels, as the
model was trained without them).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..errors import GenlabError


def parse_budgets(text: str) -> list[int | None]:
    """``"10,100,all"`` -> [10, 100, None] (None: every labelled training image)."""
    budgets: list[int | None] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "all":
            budgets.append(None)
        elif part.isdigit() and int(part) > 0:
            budgets.append(int(part))
        else:
            raise GenlabError(f"label budgets are positive integers or 'all', e.g. 10,100,all; got '{part}'")
    if not budgets:
        raise GenlabError("give at least one label budget, e.g. `labels_per_class=10,100,all`")
    return budgets


def budget_indices(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Sorted indices into ``labels`` (N,): ``per_class`` random images of every class (drawn
    with ``seed``), or all N when ``per_class`` is None."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picked = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        if len(members) < per_class:
            raise GenlabError(f"class {k} has only {len(members)} training images; "
                              f"lower the budget below {per_class} labels per class")
        picked.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(picked))


def linear_probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                          max_iter: int = 200) -> float:
    """Test accuracy (fraction in [0, 1]) of a standardised multinomial logistic regression
    fitted on (train_x (n, d), train_y) and scored on (test_x (m, d), test_y). L-BFGS stops
    after ``max_iter`` iterations, a fixed budget that keeps the all-label fit on 60,000 MNIST
    images of 784 pixels to ~30 s; the ConvergenceWarning it may raise there is silenced."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    with warnings.catch_warnings():  # an unconverged fit on 784 raw pixels is still a fair probe
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(train_x, train_y)
    return float(clf.score(test_x, test_y))


def pca_features(train_x: np.ndarray, test_x: np.ndarray, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test features from a PCA of ``width`` components fitted on ``train_x``."""
    from sklearn.decomposition import PCA

    pca = PCA(width, random_state=seed).fit(train_x)
    return pca.transform(train_x), pca.transform(test_x)


def probe(features: dict[str, tuple[np.ndarray, np.ndarray]], train_y: np.ndarray, test_y: np.ndarray,
          budgets: list[int | None], seeds: list[int], max_iter: int = 200) -> list[dict]:
    """Accuracy of each named feature set, for each budget and seed.

    Args:
        features: name -> (train features (N, d), test features (M, d)).
        train_y, test_y: class labels (N,) and (M,).
        budgets: labels per class (None: all); seeds: one draw of the labelled images per seed
            ("all" has nothing to draw, so it is fitted once).
    Returns one dict per budget: ``labels_per_class``, ``labelled_images``, and ``accuracy``:
    name -> {``mean``, ``std`` (over seeds, population), ``runs``}, fractions in [0, 1].
    """
    rows = []
    for budget in budgets:
        runs: dict[str, list[float]] = {name: [] for name in features}
        for seed in (seeds if budget is not None else seeds[:1]):
            index = budget_indices(train_y, budget, seed)
            for name, (tr, te) in features.items():
                runs[name].append(linear_probe_accuracy(tr[index], train_y[index], te, test_y, max_iter))
        rows.append({"labels_per_class": "all" if budget is None else budget,
                     "labelled_images": len(index),
                     "accuracy": {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "runs": v}
                                  for k, v in runs.items()}})
    return rows


def format_probe_table(rows: list[dict]) -> str:
    """A Markdown table of test accuracy (%) as mean ± spread (std over seeds)."""
    names = list(rows[0]["accuracy"])
    lines = ["| labels per class | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for r in rows:
        n = len(next(iter(r["accuracy"].values()))["runs"])
        cells = [f"{100 * a['mean']:.1f} ± {100 * a['std']:.1f}" if n > 1 else f"{100 * a['mean']:.1f}"
                 for a in r["accuracy"].values()]
        lines.append(f"| {r['labels_per_class']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
