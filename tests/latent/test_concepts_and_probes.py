"""Concept vectors on data with a planted attribute, attribute selectors, and linear probes."""
import numpy as np
import pytest
import torch

from genlab.data import ImageDataset
from genlab.errors import GenlabError
from genlab.latent import attribute_masks, budget_indices, concept_vector, linear_probe_accuracy, parse_budgets, probe
from genlab.latent.concept import with_attribute_file


def test_concept_vector_points_along_a_planted_direction():
    g = torch.Generator().manual_seed(0)
    n, d = 2000, 16
    direction = torch.randn(d, generator=g)
    direction /= direction.norm()
    has = torch.rand(n, generator=g) < 0.3
    codes = torch.randn(n, d, generator=g) + 2.0 * has[:, None] * direction
    v = concept_vector(codes, has)
    assert torch.cosine_similarity(v, direction, dim=0) > 0.9
    assert abs(v.norm() - 2.0) < 0.3  # the planted shift, in code units
    with pytest.raises(GenlabError, match="both sides"):
        concept_vector(codes, torch.zeros(n, dtype=torch.bool))


def _toy(n=40):
    images = torch.rand(n, 1, 4, 4)
    images[: n // 2] *= 0.5  # first half has less ink
    labels = torch.arange(n) % 4
    return ImageDataset(images, labels, name="toy", class_names=["a", "b", "c", "d"],
                        attributes=torch.tensor([[1.0 if i % 2 else -1.0, float(i)] for i in range(n)]),
                        attribute_names=["Smiling", "age"])


def test_attribute_selectors():
    data = _toy()
    pos, neg = attribute_masks(data, "label=2")
    assert pos.sum() == 10 and torch.equal(neg, ~pos)
    pos, neg = attribute_masks(data, "label=a vs label=3")  # by class name or index
    assert torch.equal(pos, data.labels == 0) and torch.equal(neg, data.labels == 3)
    pos, _ = attribute_masks(data, "Smiling")  # +1/-1 column: +1 is "with"
    assert torch.equal(pos, torch.arange(40) % 2 == 1)
    pos, _ = attribute_masks(data, "age")  # continuous column: above the median
    assert pos.sum() == 20 and pos[-1] and not pos[0]
    pos, _ = attribute_masks(data, "ink")  # measured: the second half has more ink
    assert pos[20:].float().mean() > 0.8
    for bad, message in [("glasses", "unknown attribute 'glasses'"), ("label=7", "no class '7'")]:
        with pytest.raises(GenlabError, match=message):
            attribute_masks(data, bad)


def test_attributes_from_a_csv_and_a_celeba_style_file(tmp_path):
    data = _toy(6)
    csv = tmp_path / "attrs.csv"
    csv.write_text("filename,Bald,thick\n" + "".join(f"{i}.png,{1 if i < 2 else 0},{i * 0.1}\n" for i in range(6)))
    tagged = with_attribute_file(data, csv)
    assert tagged.attribute_names == ["Bald", "thick"]
    assert attribute_masks(tagged, "Bald")[0].tolist() == [True, True, False, False, False, False]
    celeba = tmp_path / "list_attr.txt"
    celeba.write_text("6\nSmiling Male\n" + "".join(f"{i:06d}.jpg {1 if i % 3 == 0 else -1} -1\n" for i in range(6)))
    assert attribute_masks(with_attribute_file(data, celeba), "Smiling")[0].tolist() == [True, False, False, True, False, False]
    short = tmp_path / "short.csv"
    short.write_text("Bald\n1\n")
    with pytest.raises(GenlabError, match="1 rows but"):
        with_attribute_file(data, short)


def test_budgets_are_parsed_and_drawn_per_class_from_the_given_labels():
    assert parse_budgets("10, 100,all") == [10, 100, None]
    with pytest.raises(GenlabError, match="positive integers"):
        parse_budgets("10,lots")
    labels = np.repeat(np.arange(5), 30)
    index = budget_indices(labels, 7, seed=3)
    assert np.bincount(labels[index]).tolist() == [7] * 5 and len(set(index)) == 35
    assert np.array_equal(index, budget_indices(labels, 7, seed=3))
    assert not np.array_equal(index, budget_indices(labels, 7, seed=4))
    with pytest.raises(GenlabError, match="only 30"):
        budget_indices(labels, 31, 0)


def _separable(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    centres = np.eye(4, 8) * 6
    return centres[y] + rng.normal(size=(n, 8)), y


def test_probe_scores_held_out_data():
    xtr, ytr = _separable(400, 0)
    xte, yte = _separable(400, 1)
    assert linear_probe_accuracy(xtr, ytr, xte, yte) > 0.97
    # Shuffled training labels carry no signal: test accuracy falls to chance (1/4)...
    shuffled = np.random.default_rng(2).permutation(ytr)
    assert abs(linear_probe_accuracy(xtr, shuffled, xte, yte) - 0.25) < 0.1
    # ...and shuffled test labels do too, although the classifier fits its training data:
    # the score is taken on the test set, never on the labelled training images.
    assert abs(linear_probe_accuracy(xtr, ytr, xte, np.random.default_rng(3).permutation(yte)) - 0.25) < 0.1


def test_probe_table_reports_every_budget_feature_and_seed():
    xtr, ytr = _separable(400, 0)
    xte, yte = _separable(200, 1)
    noise = np.random.default_rng(5).normal(size=(600, 8))
    rows = probe({"good": (xtr, xte), "noise": (noise[:400], noise[400:])}, ytr, yte, [2, None], seeds=[0, 1, 2])
    assert [r["labels_per_class"] for r in rows] == [2, "all"]
    assert [r["labelled_images"] for r in rows] == [8, 400]
    assert len(rows[0]["accuracy"]["good"]["runs"]) == 3 and len(rows[1]["accuracy"]["good"]["runs"]) == 1
    assert rows[1]["accuracy"]["good"]["mean"] > 0.97 and rows[1]["accuracy"]["noise"]["mean"] < 0.45
