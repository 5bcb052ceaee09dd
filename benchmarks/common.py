"""Helpers shared by the benchmarks: where MNIST is, and how results are printed and written."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def mnist_data_dir(explicit: str | None) -> Path:
    """--data-dir, else $GENLAB_DATA, else ../shared/datasets beside the repository."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("GENLAB_DATA"):
        return Path(os.environ["GENLAB_DATA"]).expanduser()
    return ROOT.parent / "shared" / "datasets"


def machine() -> dict:
    return {"cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "device": "cuda" if torch.cuda.is_available() else "cpu"}


def print_table(header: list[str], rows: list[list]) -> None:
    cells = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in [header] + rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(v.rjust(w) if j else v.ljust(w) for j, (v, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    return path
