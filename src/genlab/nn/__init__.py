"""Layers looked at closely: convolutions as matrices and the transposed convolution's three views."""
from .conv_matrix import (conv_matrix, conv_output_size, flipped_kernel, transposed_conv_as_conv, transposed_conv_matrix, transposed_conv_output_size, transposed_conv_padding, zero_insert)

__all__ = ["conv_matrix", "transposed_conv_matrix", "conv_output_size", "transposed_conv_output_size",
           "transposed_conv_as_conv", "zero_insert", "transposed_conv_padding", "flipped_kernel"]
