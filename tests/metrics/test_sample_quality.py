"""Sample-quality metrics: closed forms, unbiasedness, and that each metric ranks real data above a
weak model above noise; the cached feature classifier and the Inception message."""
import numpy as np
import pytest
import scipy.linalg
import torch

from genlab.errors import GenlabError
from genlab.metrics.features import feature_classifier, feature_extractor
from genlab.metrics.sample_quality import compare_features, fid, frechet_distance, kid, precision_recall


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.1, 2, 5), rng.uniform(0.1, 2, 5)
    expected = ((mu1 - mu2) ** 2).sum() + (a + b - 2 * np.sqrt(a * b)).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_matches_scipy_for_full_covariances():
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(6), m2 @ m2.T + 0.1 * np.eye(6)
    mu = rng.normal(size=6)
    expected = (mu ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu, s1, np.zeros(6), s2) == pytest.approx(expected, rel=1e-6)


def test_fid_of_samples_approaches_the_gaussians_distance():
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, size=(20000, 3))
    b = rng.normal(1, 2, size=(20000, 3))
    assert fid(a, b) == pytest.approx(3 * 1 + 3 * (1 + 4 - 2 * 2), rel=0.05)


def test_kid_is_near_zero_for_two_halves_of_one_set_and_positive_otherwise():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 16))
    same, same_std = kid(x[:1000], x[1000:], subsets=50, subset_size=200)
    other, other_std = kid(x[:1000], x[1000:] + 0.5, subsets=50, subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3
    assert other > 5 * other_std and other > 10 * abs(same)


def test_precision_and_recall_separate_fidelity_from_coverage():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(600, 4))
    narrow = 0.3 * rng.normal(size=(600, 4))  # inside the real manifold, but covers only its core
    p, r = precision_recall(real, narrow)
    assert p > 0.9 and r < 0.5


@pytest.fixture(scope="module")
def extractor(tmp_path_factory, digits_train, digits_test):
    torch.set_num_threads(1)  # module fixtures run before the conftest's per-test setting
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        first = feature_extractor("classifier", digits_train, digits_test)
        # The second call loads the cached network: same features, same reported accuracy.
        again = feature_extractor("classifier", digits_train, digits_test)
    x = digits_test.tensors()[0][:50]
    assert np.array_equal(first(x), again(x)) and first.test_accuracy == again.test_accuracy
    assert first.describe() == {"features": "classifier:digits",
                                "feature_classifier_test_accuracy": first.test_accuracy}
    assert first.test_accuracy > 0.9
    return first


def test_each_metric_orders_real_data_a_weak_model_and_noise(extractor, digits_train, digits_test):
    g = torch.Generator().manual_seed(0)
    x = digits_train.tensors()[0][:300]
    candidates = {"real": x,  # other images of the same distribution: the floor
                  "weak": (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1),  # noisy digits
                  "noise": torch.rand(x.shape, generator=g)}
    real = extractor(digits_test.tensors()[0])
    scores = {name: compare_features(real, extractor(images), ["fid", "kid", "pr", "dc"])
              for name, images in candidates.items()}
    for key in ("fid", "kid"):  # lower is better
        assert scores["real"][key] < scores["weak"][key] < scores["noise"][key], key
    for key in ("precision", "recall", "density", "coverage"):  # higher is better
        assert scores["real"][key] > scores["weak"][key] > scores["noise"][key], key


def test_the_cached_classifier_is_trained_anew_for_another_training_set_of_the_same_name(
        digits_train, digits_test, tmp_path, monkeypatch):
    from genlab.metrics import features

    trained = []

    def quick(train_data, test_data):   # the training itself is tested above: here, when it happens
        trained.append(len(train_data))
        return features.Classifier(train_data.image_shape, train_data.num_classes).eval(), 0.5

    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(features, "train_classifier", quick)
    few = digits_train.subset(torch.arange(400))
    assert few.name == digits_train.name
    for data in (few, few, digits_train, digits_train, few):
        features.feature_classifier(data, digits_test)
    assert trained == [400, len(digits_train), 400]   # from the cache while the images are the same


def test_feature_classifier_needs_labels(digits_train, digits_test, tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    unlabelled = digits_train.subset(slice(0, 100))
    unlabelled.labels = None
    with pytest.raises(GenlabError, match="no labels"):
        feature_classifier(unlabelled, digits_test)


def test_inception_without_cached_weights_says_so_in_one_line(digits_train, digits_test, tmp_path):
    hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))  # an empty hub cache
    try:
        with pytest.raises(GenlabError) as err:
            feature_extractor("inception", digits_train, digits_test)
    finally:
        torch.hub.set_dir(hub)
    message = str(err.value)
    assert "\n" not in message and "not in the local cache" in message and "--features classifier" in message
    assert str(tmp_path / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth") in message
    with pytest.raises(GenlabError, match="unknown sample-quality metric"):
        compare_features(np.zeros((5, 2)), np.zeros((5, 2)), ["is"])


def test_inception_weights_are_read_without_unpickling(tmp_path, monkeypatch):
    """pytorch-fid's own loader unpickles; genlab reads the file with a weights-only load."""
    import pickle
    import sys
    import types

    import torch

    from genlab.metrics import features

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    weights = tmp_path / "w.pth"
    torch.save({"fc.weight": torch.ones(2, 2)}, weights)
    hostile = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, hostile)
    inception = types.ModuleType("pytorch_fid.inception")
    inception.load_state_dict_from_url = lambda *a, **k: pytest.fail("pytorch-fid's own loader was used")

    def build():
        return inception.load_state_dict_from_url("https://example.invalid/weights.pth")

    package = types.ModuleType("pytorch_fid")
    package.inception = inception
    monkeypatch.setitem(sys.modules, "pytorch_fid", package)
    monkeypatch.setitem(sys.modules, "pytorch_fid.inception", inception)
    assert torch.equal(features._without_pickle(build, weights)["fc.weight"], torch.ones(2, 2))
    with pytest.raises(pickle.UnpicklingError):
        features._without_pickle(build, hostile)
