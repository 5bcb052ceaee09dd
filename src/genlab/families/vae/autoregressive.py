"""An autoregressive term for a Bernoulli decoder: each pixel's logit also depends on the pixels
before it (raster order over channels, rows, columns).

With decoder logits a(z), the likelihood becomes

    p(x|z) = prod_i Bernoulli(x_i; sigmoid(a_i(z) + g_i(x_<i))),

a product of conditionals, so it stays normalised whatever g is. ``g`` is a masked network over
the image (after MADE, Germain et al. 2015): direct linear connections from every earlier pixel
and, with ``hidden > 0``, one masked hidden layer whose unit k sees the first m_k pixels and
feeds only pixels after them. The decoder models what z knows (the digit's shape); g models the
local correlations a factorised decoder must leave to noise (a stroke continues its neighbours).

``g`` depends on x alone, not on z, so scoring x under K draws of z costs one pass of g per image,
not K: the importance-weighted NLL with K = 5,000 costs about what it costs without g. Sampling
is sequential, one pixel at a time, with the hidden layer updated incrementally (O(D * hidden)
per image, the cost of one forward pass).

The output weights start at zero: a fresh model is the factorised decoder.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PixelContext(nn.Module):
    """Logit offsets g(x) of shape (N, C, H, W) for images x of that shape; g_i uses x_<i only."""

    def __init__(self, image_shape: tuple[int, ...], hidden: int = 0, activation: nn.Module | None = None):
        super().__init__()
        self.image_shape = tuple(image_shape)
        d = math.prod(image_shape)
        self.direct = nn.Linear(d, d, bias=False)
        nn.init.zeros_(self.direct.weight)   # used as its strictly lower triangle: pixel i sees j < i
        self.hidden = hidden
        if hidden:
            # Unit k sees pixels 0 .. m_k - 1 and feeds pixels m_k .. d - 1 (1 <= m_k <= d - 1).
            degree = 1 + torch.arange(hidden) * max(d - 1, 1) // hidden
            pixel = torch.arange(d)
            self.inp = nn.Linear(d, hidden)
            self.out = nn.Linear(hidden, d, bias=False)
            nn.init.zeros_(self.out.weight)
            self.register_buffer("inp_mask", (pixel[None, :] < degree[:, None]).float(), persistent=False)
            self.register_buffer("out_mask", (degree[None, :] <= pixel[:, None]).float(), persistent=False)
            self.act = activation if activation is not None else nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1).to(self.direct.weight.dtype)
        g = F.linear(flat, self.direct.weight.tril(-1))
        if self.hidden:
            h = self.act(F.linear(flat, self.inp.weight * self.inp_mask, self.inp.bias))
            g = g + F.linear(h, self.out.weight * self.out_mask)
        return g.view(-1, *self.image_shape).to(x.dtype)

    @torch.no_grad()
    def generate(self, logits: torch.Tensor, generator: torch.Generator | None = None,
                 mean_field: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels drawn one at a time given decoder ``logits`` (N, C, H, W): returns the images
        and each pixel's probability given the pixels drawn before it. ``mean_field``: feed each
        probability back instead of a draw (deterministic; a stand-in for the mean image, which
        has no closed form)."""
        base = logits.flatten(1)
        n, d = base.shape
        direct = self.direct.weight.tril(-1).t().contiguous()     # row j: x_j's effect
        acc = torch.zeros_like(base)                                          # direct terms so far
        if self.hidden:
            inp = (self.inp.weight * self.inp_mask).t().contiguous()          # (d, hidden)
            out = self.out.weight * self.out_mask                             # (d, hidden)
            pre = self.inp.bias.expand(n, -1).clone()
        x = torch.zeros_like(base)
        probs = torch.zeros_like(base)
        for i in range(d):
            logit = base[:, i] + acc[:, i]
            if self.hidden:
                logit = logit + self.act(pre) @ out[i]
            p = torch.sigmoid(logit)
            # Uniforms drawn on the CPU, so that a seed gives the same images on every device.
            value = p if mean_field else (torch.rand(n, generator=generator).to(p.device) < p).to(p.dtype)
            probs[:, i], x[:, i] = p, value
            acc += value[:, None] * direct[i]
            if self.hidden:
                pre += value[:, None] * inp[i]
        return x.view(-1, *self.image_shape), probs.view(-1, *self.image_shape)
