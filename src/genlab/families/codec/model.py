"""A learned image codec: an autoencoder whose code is quantized and entropy-coded (the ``codec``
family, whose model is ``compress``).

After Ballé et al. 2017 (end-to-end optimized image compression), in small:

- The analysis transform (encoder) maps an image (C, H, W) to a code y (``code_channels``,
  H / 2^k, W / 2^k) with k = len(``channels``) stride-2 convolutions; the synthesis transform
  (decoder) mirrors it with transposed convolutions and a sigmoid. Between them, GELU, or with
  ``transform="gdn"`` the paper's generalised divisive normalisation (:class:`GDN`; its inverse
  in the decoder), which suits the statistics of images' local features with fewer channels.
- Quantization: at test time the code is rounded to integers y_hat; in training, uniform noise
  in [-1/2, 1/2) is added instead (the batch's draws), which keeps the loss differentiable and
  makes the density of the noisy code the bin probability of the rounded one.
- Entropy model: each code channel has its own density, a mixture of ``mixtures`` logistic
  distributions, so P(y_hat = q) = sum_k w_k (sigma((q + 1/2 - mu_k) / s_k) -
  sigma((q - 1/2 - mu_k) / s_k)). The rate is -log2 of that, summed over the code: the bits an
  ideal entropy coder spends, and what a range coder (``constriction``) gets within a few bytes.
- Loss: ``bpp`` + ``lmbda`` * 255^2 * ``mse`` per image: bits per pixel (of the H x W image)
  plus the squared error on the 0-255 scale. ``lmbda`` sets the trade: a larger one spends more
  bits for a smaller error; a rate-distortion curve is several models with different ``lmbda``.

Files (:mod:`genlab.families.codec.bitstream`) hold a small header and the range coder's words; decoding
needs the same model, which the header names by a checksum of its weights. The coder's tables are
integers (:func:`frequency_table`), computed once from the entropy model and saved with the weights
(``coding_table``), so that a file written on one machine decodes bit-exactly on another: the
floating-point arithmetic that derives them from the densities may differ between machines in its
last bits, which would move a quantised probability and derail the decoder.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import nn

from ...config import check_at_least
from ...data.batch import Batch, as_batch
from ...errors import GenlabError
from ...models.base import Capabilities, GenerativeModel, ModelConfig, NotSupported, require_planar
from ...metrics.image_quality import batch_psnr
from ...nn.unet import pad_to_multiple

#: the probability floor of one symbol, so that no symbol costs more than about 30 bits
MIN_PROBABILITY = 1e-9
#: the coder's tables are integer frequencies summing to 2^CODING_PRECISION (the precision of the
#: range coder's own arithmetic), each at least 1
CODING_PRECISION = 24


def state_digest(state: dict[str, torch.Tensor], skip: tuple[str, ...] = ()) -> bytes:
    """8 bytes that name tensors: the first of a SHA-256 over each name and its bytes, in order
    (names in ``skip`` left out)."""
    digest = hashlib.sha256()
    for key, tensor in state.items():
        if key in skip:
            continue
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.digest()[:8]


def frequency_table(probabilities: torch.Tensor, precision: int = CODING_PRECISION) -> torch.Tensor:
    """Integer frequencies (M, K), int32, of probability rows (M, K): each row scaled to
    2^precision - K and floored, plus one, so that every symbol stays codable; what the flooring
    left over goes to the row's likeliest symbol, so each row sums to exactly 2^precision."""
    p = probabilities.double().cpu()
    total, k = 2 ** precision, p.shape[1]
    frequencies = torch.floor(p / p.sum(1, keepdim=True) * (total - k)).long() + 1
    frequencies[torch.arange(len(p)), p.argmax(1)] += total - frequencies.sum(1)
    return frequencies.int()


@dataclass
class CodecConfig(ModelConfig):
    """Attributes (beyond :class:`ModelConfig`):
        channels: widths of the stride-2 stages (each halves the image).
        code_channels: channels of the code.
        lmbda: the weight of the squared error (0-255 scale) against the bits per pixel.
        mixtures: logistic components of each code channel's density.
        symbol_range: coded symbols lie in [-symbol_range, symbol_range]; a code value beyond is
            clipped to the edge (counted in ``clipped``).
        transform: the nonlinearity of the transforms: ``gelu``, or ``gdn`` (GDN in the encoder,
            inverse GDN in the decoder, after Ballé et al.).
    """

    channels: tuple[int, ...] = (64, 64)
    code_channels: int = 16
    lmbda: float = 0.01
    mixtures: int = 3
    symbol_range: int = 64
    transform: str = "gelu"

    def __post_init__(self) -> None:
        super().__post_init__()
        _, h, w = require_planar(self, "the compress model")
        if self.transform not in TRANSFORMS:
            raise GenlabError(f"unknown transform '{self.transform}'; choose one of: {', '.join(TRANSFORMS)}")
        self.channels = tuple(int(v) for v in self.channels)
        if not self.channels:
            raise GenlabError("`channels` needs at least one width (one stride-2 stage)")
        check_at_least(self, 1, "channels", "code_channels", "mixtures", "symbol_range")
        if not self.lmbda > 0:
            raise GenlabError(f"`lmbda` must be positive (a larger one spends more bits for less error), "
                              f"got {self.lmbda}")
        if min(h, w) < 2 ** len(self.channels):
            raise GenlabError(f"`channels` {list(self.channels)} halve the image {len(self.channels)} times, which "
                              f"needs sides of at least {2 ** len(self.channels)}; these images are {h}x{w}")

    @property
    def levels(self) -> int:
        return len(self.channels)


class GDN(nn.Module):
    """Generalised divisive normalisation (Ballé, Laparra and Simoncelli 2016) of feature maps
    (N, C, H, W): y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) at each position, or, inverse
    (the decoder's), y_i = x_i * sqrt(...). beta and gamma stay positive as squares of the
    parameters (beta above ``BETA_MIN``); they start at beta = 1 and gamma = 0.1 I, near the identity."""

    BETA_MIN = 1e-6

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter(0.1 ** 0.5 * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.beta_root.pow(2) + self.BETA_MIN
        gamma = self.gamma_root.pow(2)
        norm = nn.functional.conv2d(x * x, gamma[:, :, None, None], beta)   # sum over j of gamma_ij x_j^2, + beta_i
        return x * norm.sqrt() if self.inverse else x * norm.rsqrt()


TRANSFORMS = ("gelu", "gdn")


class FactorizedDensity(nn.Module):
    """One density per code channel: a mixture of logistic distributions over the real line, used
    through its bin probabilities P(q - 1/2 < y < q + 1/2)."""

    def __init__(self, channels: int, mixtures: int):
        super().__init__()
        # Locations spread over [-1, 1] and unit scales, so the mixture starts wide and smooth.
        self.loc = nn.Parameter(torch.linspace(-1, 1, mixtures).repeat(channels, 1))
        self.log_scale = nn.Parameter(torch.zeros(channels, mixtures))
        self.logits = nn.Parameter(torch.zeros(channels, mixtures))

    def bin_probability(self, y: torch.Tensor) -> torch.Tensor:
        """P of the unit bin centred on each value of ``y`` (N, M, h, w), same shape, floored."""
        loc, scale = self.loc[None, :, :, None, None], self.log_scale.exp()[None, :, :, None, None]
        weights = self.logits.softmax(1)[None, :, :, None, None]
        v = y.float()[:, :, None]
        # On the upper side of a component, 1 - sigma on both edges: the same difference without
        # cancelling two numbers near 1 (the tails keep their digits in float32).
        flip = torch.where(v > loc, -1.0, 1.0)
        upper = torch.sigmoid(flip * (v + 0.5 - loc) / scale)
        lower = torch.sigmoid(flip * (v - 0.5 - loc) / scale)
        return (((upper - lower) * flip) * weights).sum(2).clamp_min(MIN_PROBABILITY)

    @torch.no_grad()
    def table(self, symbol_range: int) -> torch.Tensor:
        """(M, 2R + 1) probabilities of the symbols -R..R per channel; the tails beyond the range
        go to the edge symbols, and each row sums to 1. In float64, with the upper tail as
        sigma(-t) rather than 1 - sigma(t), so that no bin is lost to cancellation."""
        q = torch.arange(-symbol_range, symbol_range + 1, dtype=torch.float64, device=self.loc.device)
        loc, scale = self.loc.double()[:, :, None], self.log_scale.double().exp()[:, :, None]
        weights = self.logits.double().softmax(1)[:, :, None]
        upper = torch.sigmoid((q + 0.5 - loc) / scale)
        lower = torch.sigmoid((q - 0.5 - loc) / scale)
        upper[..., -1] = 1.0                                                  # the upper tail joins the last bin
        lower[..., 0] = 0.0                                                   # the lower tail the first
        p = upper - lower
        p[..., -1] = torch.sigmoid(-(q[-1] - 0.5 - loc[..., 0]) / scale[..., 0])   # 1 - F(R - 1/2), accurately
        p = ((p * weights).sum(1)).clamp_min(MIN_PROBABILITY)
        return p / p.sum(1, keepdim=True)


class Codec(GenerativeModel):
    """A learned lossy codec for images (C, H, W); see the module's description."""

    family = "codec"
    config_class = CodecConfig
    train_defaults = {"epochs": 20, "lr": 1e-3, "batch_size": 32}

    def __init__(self, config: CodecConfig, name: str | None = None):
        super().__init__(config, name)
        c = config.image_shape[0]
        widths = config.channels
        gdn = config.transform == "gdn"
        enc: list[nn.Module] = []
        previous = c
        for i, width in enumerate(widths):
            enc += [nn.Conv2d(previous, width, 5, stride=2, padding=2), GDN(width) if gdn else nn.GELU()]
            previous = width
        enc.append(nn.Conv2d(previous, config.code_channels, 3, padding=1))
        dec: list[nn.Module] = [nn.Conv2d(config.code_channels, widths[-1], 3, padding=1),
                                GDN(widths[-1], inverse=True) if gdn else nn.GELU()]
        for a, b in zip(reversed(widths), list(reversed(widths))[1:] + [widths[0]]):
            dec += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), GDN(b, inverse=True) if gdn else nn.GELU()]
        dec.append(nn.Conv2d(widths[0], c, 3, padding=1))
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.density = FactorizedDensity(config.code_channels, config.mixtures)
        self.keep_average("encoder", "decoder", "density")
        # The coder's integer tables and the digest of the densities they were made from: saved with
        # the weights, remade only when the densities change (saved_state, coding_frequencies).
        self.register_buffer("coding_table", torch.zeros(config.code_channels, 2 * config.symbol_range + 1,
                                                         dtype=torch.int32))
        self.register_buffer("coding_table_of", torch.zeros(8, dtype=torch.uint8))

    #: buffers made from the weights, which runs saved before they existed lack (remade on first use)
    derived_state = ("coding_table", "coding_table_of")

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(held_out_loss=True, preview=True)

    @property
    def latent_dim(self) -> int:
        raise NotSupported(f"a {self.name} model's code is a map of integers, not a latent vector; "
                           "use genlab compress RUN IMAGES")

    # ----------------------------------------------------------------- shapes
    def check_images(self, x: torch.Tensor) -> None:
        """Images of the data's channels, at least 2^levels pixels a side (any size: the
        transforms are convolutional, and sides that are not a multiple of 2^levels are padded)."""
        c = self.config.image_shape[0]
        if x.ndim != 4 or x.shape[1] != c:
            raise GenlabError(f"images of shape {tuple(x.shape[1:])} given to a codec for {c}-channel images")
        side = 2 ** self.config.levels
        if min(x.shape[-2:]) < side:
            raise GenlabError(f"a {x.shape[-2]}x{x.shape[-1]} image is too small for this codec: it halves the "
                              f"image {self.config.levels} times, so it needs sides of at least {side}")

    def code_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """(M, h, w) of the code of an H x W image."""
        m = 2 ** self.config.levels
        return self.config.code_channels, -(-height // m), -(-width // m)

    # ----------------------------------------------------------------- the codec
    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        """The unquantized code y (N, M, h, w) of images (N, C, H, W) in [0, 1]."""
        self.check_images(x)
        # The code of the padded image; synthesise crops the decoded image back.
        return self.network("encoder")(pad_to_multiple(x, self.config.levels) - 0.5)

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """Integer symbols (N, M, h, w), int64, clipped to [-symbol_range, symbol_range]."""
        r = self.config.symbol_range
        return y.round().clamp(-r, r).long()

    def synthesise(self, code: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] from a (quantized or noisy) code, cropped to ``size``."""
        out = torch.sigmoid(self.network("decoder")(code.float()))
        return out if size is None else out[..., :size[0], :size[1]]

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images through the codec: analysed, rounded, synthesised (what a decoded file gives)."""
        return self.synthesise(self.quantize(self.analyse(x)), tuple(x.shape[-2:]))

    def bits(self, symbols: torch.Tensor) -> torch.Tensor:
        """Ideal code length of integer (or noisy) codes (N, M, h, w) in bits per image (N,)."""
        return -torch.log2(self.network("density").bin_probability(symbols)).flatten(1).sum(1)

    def probability_table(self) -> torch.Tensor:
        """(M, 2R + 1) symbol probabilities per code channel, float32, CPU: the entropy model's
        (its moving average when one is kept), which :meth:`coding_frequencies` quantises."""
        return self._coding_density().table(self.config.symbol_range).float().cpu()

    def _coding_density(self) -> FactorizedDensity:
        """The density that files are coded with: the moving average when one is kept, in any mode."""
        return self._average_of("density") if "density" in self._averaged_names else self.density

    def _density_digest(self) -> torch.Tensor:
        return torch.frombuffer(bytearray(state_digest(self._coding_density().state_dict())), dtype=torch.uint8)

    @torch.no_grad()
    def coding_frequencies(self) -> torch.Tensor:
        """(M, 2R + 1) integer frequencies per code channel (int32, CPU, rows summing to
        2^CODING_PRECISION): the range coder's tables. Made from :meth:`probability_table` when the
        densities differ from those the saved table was made from, and kept in ``coding_table``;
        otherwise the saved table itself, so that a run's files decode alike on every machine."""
        digest = self._density_digest()
        if not torch.equal(self.coding_table_of.cpu(), digest):
            self.coding_table.copy_(frequency_table(self.probability_table()))
            self.coding_table_of.copy_(digest)
        return self.coding_table.cpu()

    def saved_state(self) -> dict[str, torch.Tensor]:
        """The state dict, with the coder's tables made from the densities being saved."""
        self.coding_frequencies()
        return super().saved_state()

    # ----------------------------------------------------------------- training
    def loss(self, batch: Batch | torch.Tensor, labels: torch.Tensor | None = None,
             step: int | None = None) -> dict[str, torch.Tensor]:
        """``loss`` = ``bpp`` + ``lmbda`` * 255^2 * ``mse`` (batch means), with ``bpp`` the bits
        per pixel of the code (H x W pixels), ``mse`` the squared error per value and ``psnr`` (dB,
        mean per image). In training the code gets uniform noise (the batch's draws); in eval mode
        it is rounded, as a file's is."""
        batch = as_batch(batch, labels)
        x = batch.images
        y = self.analyse(x)
        if self.training:
            code = y + batch.rand(*y.shape[1:]).to(y.dtype) - 0.5
        else:
            code = self.quantize(y).to(y.dtype)
        out = self.synthesise(code, tuple(x.shape[-2:]))
        bpp = self.bits(code) / (x.shape[-2] * x.shape[-1])
        mse = (out.float() - x.float()).pow(2).flatten(1).mean(1)
        loss = bpp + self.config.lmbda * 255 ** 2 * mse
        return {"loss": loss.mean(), "bpp": bpp.mean().detach(), "mse": mse.mean().detach(),
                "psnr": batch_psnr(out.detach(), x).mean()}

    @torch.no_grad()
    def preview(self, batch: Batch, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Rows to look at: the images and what the codec gives back."""
        return [batch.images, self.reconstruct(batch.images)]

