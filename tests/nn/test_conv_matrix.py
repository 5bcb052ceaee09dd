"""W, W^T and the stride-1 view of the transposed convolution, checked against PyTorch's layers."""
import itertools

import pytest
import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.nn import (conv_matrix, conv_output_size, transposed_conv_as_conv, transposed_conv_matrix,
                       transposed_conv_output_size)

TOL = 1e-10  # float64 throughout

# Every kernel 1..4, stride 1..3, padding 0..2 and input side 1..6 where the convolution is valid.
GRID = [(k, s, p, i) for k, s, p, i in itertools.product(range(1, 5), range(1, 4), range(3), range(1, 7))
        if i + 2 * p >= k]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny dilated convs on a busy machine spend seconds in OpenMP barriers; one thread takes ms."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _conv(cin, cout, k, s, p, d=1, groups=1, bias=False, seed=0, **kw):
    torch.manual_seed(seed)
    return nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=groups, bias=bias, **kw).double()


def _tconv_sharing(conv: nn.Conv2d, output_padding=0) -> nn.ConvTranspose2d:
    """The ConvTranspose2d with conv's weights: Conv2d weight (A, B/g, k, k), in B -> out A, serves as ConvTranspose2d A -> B."""
    out_ch, in_ch = conv.weight.shape[:2]
    tconv = nn.ConvTranspose2d(out_ch, in_ch * conv.groups, conv.kernel_size, stride=conv.stride,
                               padding=conv.padding, output_padding=output_padding, dilation=conv.dilation,
                               groups=conv.groups, bias=False).double()
    with torch.no_grad():
        tconv.weight.copy_(conv.weight)
    return tconv


@pytest.mark.parametrize("k,s,p,i", GRID)
def test_conv_matrix_and_its_transpose(k, s, p, i):
    conv = _conv(2, 3, k, s, p, seed=k * 100 + s * 10 + p)
    o = conv_output_size(i, k, s, p)
    x = torch.randn(1, 2, i, i, dtype=torch.float64)
    W = conv_matrix(conv, i)
    assert W.shape == (3 * o * o, 2 * i * i)
    assert conv(x).shape[-1] == o
    assert torch.allclose(W @ x.flatten(), conv(x).flatten(), atol=TOL)

    # W^T is the matrix of the transposed conv that returns to side i (output_padding picks i).
    op = (i + 2 * p - k) % s  # the rows the convolution's floor dropped
    tconv = _tconv_sharing(conv, output_padding=op)
    assert transposed_conv_output_size(o, k, s, p, op) == i
    assert torch.equal(transposed_conv_matrix(tconv, o), W.T)


@pytest.mark.parametrize("k,s,p,i", GRID)
def test_transposed_conv_as_conv_matches_layer(k, s, p, i):
    for op in range(s):
        if (i - 1) * s + k + op - 2 * p < 1:  # padding would crop everything
            continue
        o = transposed_conv_output_size(i, k, s, p, op)
        torch.manual_seed(i)
        tconv = nn.ConvTranspose2d(2, 3, k, stride=s, padding=p, output_padding=op).double()
        x = torch.randn(2, 2, i, i, dtype=torch.float64)
        y = tconv(x)
        assert y.shape[-2:] == (o, o)
        assert torch.allclose(transposed_conv_as_conv(tconv, x), y, atol=TOL)
        W = transposed_conv_matrix(tconv, i)
        assert torch.allclose(W @ x[0].flatten() + tconv.bias.repeat_interleave(o * o), y[0].flatten(), atol=TOL)


@pytest.mark.parametrize("opts", [
    dict(d=2), dict(groups=2), dict(d=2, groups=2), dict(padding_mode="circular"), dict(bias=True),
])
def test_conv_matrix_options(opts):
    bias = opts.pop("bias", False)
    conv = _conv(4, 6, 3, 2, 1, bias=bias, **opts)
    x = torch.randn(1, 4, 7, 5, dtype=torch.float64)
    W = conv_matrix(conv, (7, 5))
    y = conv(x)
    if bias:
        y = y - conv.bias[:, None, None]
    assert torch.allclose(W @ x.flatten(), y.flatten(), atol=TOL)


@pytest.mark.parametrize("d,groups,kernel,stride,padding,op", [
    (2, 1, 3, 2, 1, 1), (1, 2, 4, 2, 1, 0), (2, 2, 3, 3, 2, 2), (1, 1, (2, 3), (1, 2), (0, 1), (0, 1)),
])
def test_transposed_options(d, groups, kernel, stride, padding, op):
    torch.manual_seed(0)
    tconv = nn.ConvTranspose2d(4, 6, kernel, stride=stride, padding=padding, output_padding=op,
                               dilation=d, groups=groups).double()
    x = torch.randn(2, 4, 4, 5, dtype=torch.float64)
    assert torch.allclose(transposed_conv_as_conv(tconv, x), tconv(x), atol=TOL)
    # The matrix is the transpose of the Conv2d (same weights) on the transposed conv's output size.
    conv = nn.Conv2d(6, 4, kernel, stride=stride, padding=padding, dilation=d, groups=groups, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(tconv.weight)
    out_hw = tconv(x).shape[-2:]
    assert torch.equal(transposed_conv_matrix(tconv, (4, 5)), conv_matrix(conv, tuple(out_hw)).T)


def test_output_size_formulas_agree_with_pytorch_for_dilation():
    for k, s, p, d, i in itertools.product(range(1, 4), range(1, 3), range(2), range(1, 3), range(3, 7)):
        if i + 2 * p < d * (k - 1) + 1:
            continue
        conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
        assert conv(torch.zeros(1, 1, i, i)).shape[-1] == conv_output_size(i, k, s, p, d)


def test_errors_are_genlab_errors():
    with pytest.raises(GenlabError, match="does not fit"):
        conv_output_size(2, 5, 1, 0)
    with pytest.raises(GenlabError, match="output_padding"):
        transposed_conv_output_size(3, 3, 2, 1, output_padding=2)
    with pytest.raises(GenlabError, match="cannot take"):
        conv_matrix(nn.Conv2d(1, 1, 5), 3)
    with pytest.raises(GenlabError, match="nn.Conv2d"):
        conv_matrix(nn.ConvTranspose2d(1, 1, 3), 3)
    with pytest.raises(GenlabError, match="smaller input"):
        conv_matrix(nn.Conv2d(8, 8, 3, padding=1), 64)
