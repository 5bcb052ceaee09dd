"""The embedded digits and the batch transforms."""
import torch

from genlab.data import binarize, corrupt, gaussian_noise, load_dataset, masking_noise


def test_digits_split_is_fixed_and_disjoint():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert (len(train), len(test)) == (1497, 300)
    assert train.image_shape == (1, 8, 8) and train.num_classes == 10
    x_train, _ = train.tensors()
    x_test, y_test = test.tensors()
    assert x_train.min() >= 0 and x_train.max() == 1
    # 17 grey levels, k/16.
    assert torch.allclose(x_test * 16, (x_test * 16).round())
    # No test image appears in the training split (digits has a few exact duplicates; allow none here).
    d = torch.cdist(x_test.flatten(1), x_train.flatten(1))
    assert (d.min(1).values > 0).float().mean() > 0.99
    assert torch.equal(y_test, load_dataset("digits", "test").labels)
    assert set(y_test.tolist()) == set(range(10))


def test_digits28_is_the_resized_digits():
    small, big = load_dataset("digits", "test"), load_dataset("digits28", "test")
    assert big.image_shape == (1, 28, 28) and torch.equal(small.labels, big.labels)
    pooled = torch.nn.functional.adaptive_avg_pool2d(big.tensors()[0], 8).flatten()
    # Bilinear up then area down is not an exact inverse (28 / 8 is not whole), but close.
    assert torch.corrcoef(torch.stack([pooled, small.tensors()[0].flatten()]))[0, 1] > 0.95


def test_binarize_draws_fresh_bernoulli_pixels():
    x = torch.full((200, 1, 10, 10), 0.3)
    a, b = binarize(x), binarize(x)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert abs(a.mean().item() - 0.3) < 0.01 and not torch.equal(a, b)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(binarize(x, g1), binarize(x, g2))


def test_noise_levels():
    x = torch.full((100, 1, 20, 20), 0.5)
    g = torch.Generator().manual_seed(0)
    noisy = gaussian_noise(x, 0.1, g)
    assert abs((noisy - x).std().item() - 0.1) < 0.005 and noisy.min() >= 0 and noisy.max() <= 1
    masked = masking_noise(x, 0.25, g)
    assert abs((masked == 0).float().mean().item() - 0.25) < 0.01
    assert torch.equal(corrupt(x, "none", 0.5), x)
