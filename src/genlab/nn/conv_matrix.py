"""Convolutions as matrices: W for ``nn.Conv2d``, W^T for ``nn.ConvTranspose2d``.

A 2-D convolution without bias is a linear map from one flattened image (C_in*H*W numbers) to one
flattened output (C_out*H_out*W_out numbers), so it is a matrix W. The transposed convolution with
the same weights is the map by W^T: it sends gradients back through the convolution, and it is the
"upsampling" layer of decoders. :func:`transposed_conv_as_conv` shows the third view: W^T x is a
stride-1 convolution over the zero-inserted, padded input with the flipped kernel.

Sizes follow Dumoulin and Visin (2016), "A guide to convolution arithmetic for deep learning":
``o = floor((i + 2p - d(k-1) - 1) / s) + 1`` for a convolution and
``o = (i-1)s - 2p + d(k-1) + output_padding + 1`` for a transposed one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GenlabError, first_line

# A dense W holds out_numel * in_numel numbers; beyond this it stops being an explanation.
MAX_MATRIX_ENTRIES = 50_000_000


def conv_output_size(i: int, k: int, s: int, p: int, d: int = 1) -> int:
    """Output side of a convolution: input side i, kernel k, stride s, padding p, dilation d."""
    if min(i, k, s, d) < 1 or p < 0:
        raise GenlabError(f"conv sizes need i, k, s, d >= 1 and p >= 0, got i={i} k={k} s={s} p={p} d={d}")
    o = (i + 2 * p - d * (k - 1) - 1) // s + 1
    if o < 1:
        raise GenlabError(f"a kernel of span {d * (k - 1) + 1} does not fit an input of side {i} "
                          f"with padding {p}; use a larger input or more padding")
    return o


def transposed_conv_output_size(i: int, k: int, s: int, p: int, output_padding: int = 0, d: int = 1) -> int:
    """Output side of a transposed convolution (the input side of the convolution it transposes)."""
    if min(i, k, s, d) < 1 or p < 0 or output_padding < 0:
        raise GenlabError(f"transposed conv sizes need i, k, s, d >= 1 and p, output_padding >= 0, "
                          f"got i={i} k={k} s={s} p={p} output_padding={output_padding} d={d}")
    if output_padding >= max(s, d):
        raise GenlabError(f"output_padding must be smaller than stride or dilation, "
                          f"got output_padding={output_padding} with s={s} d={d}")
    o = (i - 1) * s - 2 * p + d * (k - 1) + output_padding + 1
    if o < 1:
        raise GenlabError(f"padding {p} crops the whole output of a transposed conv on side {i}; use less padding")
    return o


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h < 1 or w < 1:
        raise GenlabError(f"input size must be positive, got {size}")
    return h, w


def _matrix_of(apply, in_shape: tuple[int, int, int], dtype: torch.dtype, device: torch.device) -> Tensor:
    """Columns of the matrix of a linear map: apply it to every one-hot image in one batch.

    in_shape is (C, H, W); ``apply`` maps (N, C, H, W) -> (N, ...). Returns (out_numel, in_numel).
    Exact: each output entry is a sum of weight*1 and weight*0 terms, so no rounding occurs.
    """
    n = in_shape[0] * in_shape[1] * in_shape[2]
    try:  # one zero image first: a cheap size check with a clear message
        m = apply(torch.zeros(1, *in_shape, dtype=dtype, device=device)).numel()
    except RuntimeError as e:
        raise GenlabError(f"the layer cannot take an input of shape {in_shape}: {first_line(e, 1000)}") from None
    if m * n > MAX_MATRIX_ENTRIES:
        raise GenlabError(f"the matrix would have {m} x {n} entries; use a smaller input size")
    basis = torch.eye(n, dtype=dtype, device=device).reshape(n, *in_shape)
    return apply(basis).reshape(n, m).T.contiguous()


def conv_matrix(conv: nn.Conv2d, input_size: int | tuple[int, int]) -> Tensor:
    """The matrix W of ``conv`` (bias excluded) for one image of side ``input_size``.

    Returns W of shape (C_out*H_out*W_out, C_in*H*W) such that
    ``conv(x)[0].flatten() - bias_term == W @ x[0].flatten()`` for x of shape (1, C_in, H, W),
    flattening in PyTorch's (C, H, W) order.

    Why the identity basis rather than index arithmetic: column j of W is the layer's response to
    the j-th one-hot image, so running the layer on the batch of all one-hot images gives W in one
    call, exactly, and for every option the layer supports (stride, padding including 'same' and
    padding_mode, dilation, groups) without re-deriving PyTorch's indexing. The cost is
    O(in_numel * out_numel) memory, which is what the dense W costs anyway.
    """
    if not isinstance(conv, nn.Conv2d):
        raise GenlabError(f"conv_matrix needs an nn.Conv2d, got {type(conv).__name__}")
    h, w = _pair(input_size)
    with torch.no_grad():
        # _conv_forward applies padding_mode (reflect, circular, ...) and skips the bias when given None.
        return _matrix_of(lambda x: conv._conv_forward(x, conv.weight, None),
                          (conv.in_channels, h, w), conv.weight.dtype, conv.weight.device)


def transposed_conv_matrix(tconv: nn.ConvTranspose2d, input_size: int | tuple[int, int]) -> Tensor:
    """The matrix of ``tconv`` (bias excluded): shape (C_out*H_out*W_out, C_in*H*W).

    If ``tconv`` shares its weight tensor with a Conv2d of the same kernel, stride, padding and
    dilation (Conv2d weight (A, B, k, k) used as ConvTranspose2d(A -> B)), this matrix equals the
    transpose of that Conv2d's :func:`conv_matrix` on the transposed conv's output size.
    Built from the identity basis, like :func:`conv_matrix`.
    """
    if not isinstance(tconv, nn.ConvTranspose2d):
        raise GenlabError(f"transposed_conv_matrix needs an nn.ConvTranspose2d, got {type(tconv).__name__}")
    h, w = _pair(input_size)
    with torch.no_grad():
        apply = lambda x: F.conv_transpose2d(x, tconv.weight, None, tconv.stride, tconv.padding,  # noqa: E731
                                             tconv.output_padding, tconv.groups, tconv.dilation)
        return _matrix_of(apply, (tconv.in_channels, h, w), tconv.weight.dtype, tconv.weight.device)


def zero_insert(x: Tensor, stride: tuple[int, int]) -> Tensor:
    """Put stride-1 zeros between neighbouring pixels: (N, C, H, W) -> (N, C, (H-1)sh+1, (W-1)sw+1)."""
    n, c, h, w = x.shape
    sh, sw = stride
    out = x.new_zeros(n, c, (h - 1) * sh + 1, (w - 1) * sw + 1)
    out[:, :, ::sh, ::sw] = x
    return out


def transposed_conv_padding(tconv: nn.ConvTranspose2d) -> tuple[int, int, int, int]:
    """Padding (left, right, top, bottom) of the zero-inserted input in the stride-1 conv view.

    Each side gets d(k-1) - p: enough zeros that every kernel position touching an input pixel is
    visited (d(k-1)), minus what the transposed conv's padding crops (p). output_padding adds rows
    and columns on the bottom/right only, which is why it resolves the ambiguity of the output size.
    A negative value means cropping.
    """
    (kh, kw), (ph, pw), (dh, dw) = tconv.kernel_size, tconv.padding, tconv.dilation
    oph, opw = tconv.output_padding
    left, top = dw * (kw - 1) - pw, dh * (kh - 1) - ph
    return left, left + opw, top, top + oph


def flipped_kernel(tconv: nn.ConvTranspose2d) -> Tensor:
    """The Conv2d weight that makes the stride-1 view equal ``tconv``: (C_out, C_in/groups, kh, kw).

    ConvTranspose2d stores (C_in, C_out/groups, kh, kw); the conv view swaps the two channel axes
    within each group and rotates each kernel by 180 degrees.
    """
    weight = tconv.weight
    g = tconv.groups
    c_in, c_out_g, kh, kw = weight.shape
    swapped = weight.reshape(g, c_in // g, c_out_g, kh, kw).transpose(1, 2).reshape(g * c_out_g, c_in // g, kh, kw)
    return swapped.flip(-2, -1)


def transposed_conv_as_conv(tconv: nn.ConvTranspose2d, x: Tensor) -> Tensor:
    """``tconv(x)`` computed as a stride-1 convolution, without ``conv_transpose2d``.

    x: (N, C_in, H, W) -> (N, C_out, H_out, W_out), with H_out from
    :func:`transposed_conv_output_size`. Steps: insert stride-1 zeros between pixels, pad each side
    by d(k-1) - p (plus output_padding on the bottom/right), convolve with stride 1 and the same
    dilation using the flipped, channel-swapped kernel, then add the bias.
    """
    if tconv.padding_mode != "zeros":
        raise GenlabError(f"ConvTranspose2d supports only padding_mode 'zeros', got '{tconv.padding_mode}'")
    # F.pad accepts negative amounts and crops, which covers p > d(k-1).
    padded = F.pad(zero_insert(x, tconv.stride), transposed_conv_padding(tconv))
    return F.conv2d(padded, flipped_kernel(tconv), tconv.bias, stride=1,
                    dilation=tconv.dilation, groups=tconv.groups)
