"""What the speed settings do to quality: the same fixed short training with every speed lever off
(plain fp32) and with genlab's defaults (bf16 autocast, channels-last convolutions, the fused
AdamW), judged by the test ELBO (VAE) or the FID of samples (GANs, diffusion), over a few seeds.

    python benchmarks/precision.py [--epochs 20] [--seeds 0 1 2 3 4] [--threads 2] [--only vae dcgan cgan diffusion]

The models and settings are those of benchmarks/throughput.py. Each model is trained in plain fp32
(fp32, the default layout, the multi-tensor AdamW) and with its family's speed defaults
(``train_defaults``: bf16 where the hardware has it, channels-last for the 2-D GANs; the fused
AdamW for all); a family whose default precision is fp32 (the VAE) is also trained in bf16, to say
what that lever would cost. Data: the embedded digits at
28x28 (`digits28`: 1,497 training and 300 test images), so it runs anywhere. The FID uses the
features of genlab's classifier for the dataset, with 300 samples against the 300 test images
(biased upwards at this size: compare the rows with each other, not with other tables). Writes
benchmarks/results/precision.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import genlab  # noqa: E402  (first: it sets OMP_WAIT_POLICY before torch starts its threads)
import torch  # noqa: E402

from common import machine, print_table, sample_quality_reference, write_results  # noqa: E402
from genlab.data import load_dataset  # noqa: E402
from genlab.metrics.sample_quality import compare_features, generate  # noqa: E402
from genlab.train import evaluate_loss  # noqa: E402
from throughput_worker import ENTRIES, describe, speed_defaults  # noqa: E402


PLAIN = {"precision": "fp32", "channels_last": False, "fused_optimizer": False}


def variants(model_name: str) -> list[tuple[str, dict]]:
    """(label, settings) of the runs compared: every speed lever off; the family's defaults (bf16
    resolved where the hardware has it, channels-last, the fused AdamW); and for a family whose
    default precision is fp32 (the VAE), also bf16, to say what that lever would cost."""
    levers = speed_defaults(model_name)
    runs = [("plain fp32", PLAIN), (f"genlab: {describe(levers)}", levers)]
    if levers["precision"] == "fp32":
        bf16 = {**levers, "precision": "bf16"}
        runs.append((describe(bf16), bf16))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=list(ENTRIES), default=list(ENTRIES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_data, test_data = load_dataset("digits28", "train"), load_dataset("digits28", "test")
    extractor, real, floor = sample_quality_reference(train_data, test_data, len(test_data), ["fid"])
    rows, results = [], {}
    for name in args.only:
        model_name, settings, train_settings = ENTRIES[name]
        for variant, levers in variants(model_name):
            figures, minutes = [], []
            for seed in args.seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    started = time.perf_counter()
                    model = genlab.train(model_name, train_data, None, out_dir=Path(tmp) / "run", epochs=args.epochs,
                                         progress=False, seed=seed, snapshot_every=-1, model_settings=settings,
                                         **{**train_settings, **levers})
                    minutes.append((time.perf_counter() - started) / 60)
                if name == "vae":  # the test -ELBO in nats, evaluated in fp32
                    figures.append(evaluate_loss(model, test_data, binary=False, seed=0)["neg_elbo"])
                else:
                    fake = extractor(generate(model, len(test_data), seed=seed))
                    figures.append(compare_features(real, fake, ["fid"])["fid"])
            measure = "test -ELBO (nats)" if name == "vae" else "FID"
            spread = statistics.stdev(figures) if len(figures) > 1 else 0.0
            results.setdefault(name, {})[variant] = {"measure": measure, "values": figures,
                                                       "mean": statistics.mean(figures), "std": spread,
                                                       "minutes_per_run": statistics.mean(minutes)}
            rows.append([name, variant, measure, statistics.mean(figures), spread,
                         " ".join(f"{v:.2f}" for v in figures), statistics.mean(minutes)])
    print_table(["model", "settings", "measure", "mean", "std over seeds", "per seed", "minutes a run"], rows)
    print(f"FID floor (300 training images against the test images): {floor['fid']:.2f}")
    path = write_results("precision", {
        "benchmark": "quality after a fixed short training, fp32 against the speed settings, digits28",
        "command": "python benchmarks/precision.py " + " ".join(sys.argv[1:]), "machine": machine(),
        "epochs": args.epochs, "seeds": args.seeds, "features": extractor.name,
        "feature_classifier_test_accuracy": extractor.test_accuracy, "fid_floor": floor["fid"], "results": results})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
