"""Short runs of the image-to-image tasks on the embedded data and the photos, each against its
trivial baseline (the noisy input, bicubic upscaling, the grey image): the figures quoted in
docs/image-to-image.md for the tests' settings (the longer runs are benchmarks/image_to_image.py).

    python benchmarks/image_to_image_quick.py [--threads 1]

Writes benchmarks/results/image_to_image_quick.json.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, print_table, write_results  # noqa: E402

import genlab  # noqa: E402
from genlab.data import load_dataset  # noqa: E402
from genlab.metrics import evaluate  # noqa: E402

#: (label, model, train data, test data, epochs, batch, lr, model settings)
RUNS = [
    ("denoise, Gaussian std 0.3", "denoise", "digits28", "digits28", 3, 64, 3e-3,
     {"noise": "gaussian", "noise_level": 0.3, "channels": (8, 16, 32)}),
    ("denoise, salt-and-pepper 0.2", "denoise", "digits28", "digits28", 3, 64, 3e-3,
     {"noise": "salt-pepper", "noise_level": 0.2, "channels": (8, 16, 32)}),
    ("denoise, salt-and-pepper 0.2, L1 loss", "denoise", "digits28", "digits28", 3, 64, 3e-3,
     {"noise": "salt-pepper", "noise_level": 0.2, "channels": (8, 16, 32), "loss": "l1"}),
    ("superres x2, ESPCN (16, 16)", "superres", "digits28", "digits28", 4, 64, 3e-3, {"scale": 2, "channels": (16, 16)}),
    ("superres x4, ESPCN (16, 16)", "superres", "digits28", "digits28", 4, 64, 3e-3, {"scale": 4, "channels": (16, 16)}),
    ("colorize Lab, 300 photo patches", "colorize", "photos:300", "photos", 3, 16, 3e-3, {"channels": (8, 16, 32)}),
    ("colorize Lab, digits-m", "colorize", "digits-m", "digits-m", 3, 64, 3e-3, {"channels": (8, 16, 32)}),
    ("colorize Lab, digits-m, 20 epochs", "colorize", "digits-m", "digits-m", 20, 64, 1e-3, {"channels": (8, 16, 32)}),
    ("colorize YUV, digits-m, 20 epochs", "colorize", "digits-m", "digits-m", 20, 64, 1e-3,
     {"channels": (8, 16, 32), "color_space": "yuv"}),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows, results = [], []
    for label, name, train_name, test_name, epochs, batch, lr, settings in RUNS:
        base, _, count = train_name.partition(":")
        train_data = load_dataset(base, "train")
        if count:
            train_data = train_data.subset(slice(0, int(count)))
        test_data = load_dataset(test_name, "test")
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            model = genlab.train(name, train_data, test_data, out_dir=out, epochs=epochs, batch_size=batch, lr=lr,
                                 snapshot_every=-1, progress=False, model_settings=settings)
            seconds = time.perf_counter() - started
        r = evaluate(model.eval(), test_data)
        results.append({"run": label, "train_seconds": round(seconds, 1), "epochs": epochs, **r})
        pooled = f"{r['psnr_pooled_gain_db']:+.1f}" if "psnr_pooled_gain_db" in r else "-"
        rows.append([label, f"{seconds:.0f}", f"{r['psnr']:.2f}", f"{r['baseline_psnr']:.2f}",
                     f"{r['psnr_gain_db']:+.1f}", pooled, f"{r['ssim']:.3f}", f"{r['baseline_ssim']:.3f}"])
    print_table(["run", "train (s)", "PSNR", "baseline PSNR", "gain (dB)", "pooled gain", "SSIM", "baseline SSIM"],
                rows)
    print(f"\nwritten to {write_results('image_to_image_quick', {'machine': machine(), 'runs': results})}")


if __name__ == "__main__":
    main()
