"""What a run says while it trains: a line per epoch with the losses, the time and the ETA (also
when the output is a log file, where a line every minute or so says how far the epoch is), and
the epoch records handed to the user's callbacks and, if asked, to TensorBoard."""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import GenlabError

#: seconds between two progress lines within an epoch when the output is not a terminal
LOG_EVERY_S = 60.0
#: the losses a line shows first (then the rest, up to MAX_TERMS in all)
FIRST_TERMS = ("loss", "recon", "kl", "d_loss", "g_loss")
MAX_TERMS = 4

Callback = Callable[[dict[str, Any]], None]


def duration(seconds: float) -> str:
    """``seconds`` as people read it: ``42 s``, ``3 min 05 s``, ``2 h 10 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _terms(record: dict[str, Any], prefix: str) -> list[tuple[str, float]]:
    """The ``prefix`` terms of ``record`` worth a place on the line (not another name for the loss)."""
    values = {k[len(prefix):]: v for k, v in record.items() if k.startswith(prefix) and isinstance(v, (int, float))}
    loss = values.get("loss")
    values = {k: v for k, v in values.items() if k == "loss" or v != loss}
    order = [k for k in FIRST_TERMS if k in values] + sorted(k for k in values if k not in FIRST_TERMS)
    return [(k, values[k]) for k in order[:MAX_TERMS]]


def epoch_line(record: dict[str, Any], epochs: int, trained_s: float, remaining_s: float | None) -> str:
    """``epoch 3/20  loss 102.4  kl 12.31  val loss 104.2  18.2 s  ETA 5 min 10 s``."""
    parts = [f"epoch {record['epoch']}/{epochs}"]
    parts += [f"{k} {v:.4g}" for k, v in _terms(record, "train/")]
    parts += [f"val {k} {v:.4g}" for k, v in _terms(record, "val/")[:1]]
    parts.append(duration(record.get("time_s", 0.0)))
    if remaining_s is not None and remaining_s > 0:
        parts.append(f"ETA {duration(remaining_s)}")
    else:
        parts.append(f"done in {duration(trained_s)}")
    return "  ".join(parts)


class Reporter:
    """The lines of one run (rank 0, when ``show``), its callbacks and its TensorBoard file."""

    def __init__(self, out: Path, epochs: int, limit_s: float, show: bool, callbacks: list[Callback],
                 tensorboard: bool):
        self.epochs, self.limit_s, self.show = epochs, limit_s, show
        self.callbacks = list(callbacks)
        self._last_line = time.perf_counter()
        self.interactive = sys.stderr.isatty()
        if tensorboard:
            self.callbacks.append(tensorboard_callback(out / "tensorboard"))

    def epoch(self, record: dict[str, Any], epochs_done: int, trained_s: float) -> None:
        """After each epoch: its line, and its record to every callback."""
        if self.show:
            per_epoch = trained_s / max(epochs_done, 1)
            remaining = min((self.epochs - epochs_done) * per_epoch, self.limit_s - trained_s)
            print(epoch_line(record, self.epochs, trained_s, remaining if math.isfinite(remaining) else None),
                  flush=True)
            self._last_line = time.perf_counter()
        for callback in self.callbacks:
            callback(dict(record))

    def step(self, epoch: int, batch: int, per_epoch: int, loss: Callable[[], float], elapsed_s: float) -> None:
        """Within an epoch, when the output is not a terminal (no progress bar): a line every
        :data:`LOG_EVERY_S` seconds."""
        if not self.show or self.interactive or time.perf_counter() - self._last_line < LOG_EVERY_S:
            return
        rate = elapsed_s / max(batch, 1)
        print(f"epoch {epoch}/{self.epochs}  step {batch}/{per_epoch}  loss {loss():.4g}  {duration(elapsed_s)}  "
              f"epoch ETA {duration((per_epoch - batch) * rate)}", flush=True)
        self._last_line = time.perf_counter()


def check_tensorboard() -> None:
    """One line if the tensorboard package is missing."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:   # torch.utils.tensorboard's own dependency
        raise GenlabError("`tensorboard` needs the tensorboard package: pip install 'genlab[tensorboard]' "
                          "(or pip install tensorboard)")


def tensorboard_callback(folder: Path) -> Callback:
    """A callback that writes each epoch's numbers as TensorBoard scalars (at the epoch's step)."""
    check_tensorboard()
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))

    def write(record: dict[str, Any]) -> None:
        step = int(record.get("step", 0))
        for key, value in record.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)) and math.isfinite(value):
                writer.add_scalar(key, value, step)
        writer.flush()

    return write
