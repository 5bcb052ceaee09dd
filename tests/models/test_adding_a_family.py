"""The worked example of docs/architecture.md ("Adding a family") works as the doc says: its own
module, one registry line, and then training, resume, bf16, sampling and the moving average."""
import json
import re
import sys
import types
from pathlib import Path

import pytest
import torch

import genlab.models as models
from genlab.train import load_run, train

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


@pytest.fixture
def registered(monkeypatch):
    code = re.search(r"```python\n(# src/genlab/models/pixel_gaussian.py\n.*?)```", DOC.read_text(), re.S)[1]
    module = types.ModuleType("genlab.models.pixel_gaussian")
    module.__package__ = "genlab.models"
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, str(DOC), "exec"), module.__dict__)
    cls = module.PixelGaussian
    monkeypatch.setitem(models.FAMILIES, cls.family, cls)          # the registry line
    monkeypatch.setitem(models.MODELS, "pixel-gaussian", ("pixel-gaussian", {}))
    return cls


def test_the_documented_family_trains_resumes_and_samples(registered, digits_train, digits_test, tmp_path):
    out = tmp_path / "run"
    train("pixel-gaussian", digits_train, digits_test, out_dir=out, epochs=2, lr=0.05, progress=False,
          model_settings={"ema_decay": 0.9})
    train("pixel-gaussian", digits_train, digits_test, out_dir=out, epochs=4, lr=0.05, progress=False,
          resume=True)
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4] and log[-1]["train/loss"] < log[0]["train/loss"]
    run = load_run(out)
    x = digits_train.tensors()[0]
    torch.testing.assert_close(run.model.mean, x.mean(0), atol=0.1, rtol=0)  # it learned the pixel means
    assert run.model.sample(8, generator=torch.Generator().manual_seed(0)).shape == (8, 1, 8, 8)
    assert not torch.equal(run.model.network("mean"), run.model.mean)      # eval mode: the average
    train("pixel-gaussian", digits_train, None, out_dir=tmp_path / "bf16", epochs=1, precision="bf16",
          progress=False)
