"""The worked example of docs/architecture.md ("Adding a family") works as the doc says, from
outside the package tree and with no edit of the core: its record, registered, brings a model
whose settings are flags of `genlab train` (and its --help), a data hook, a measure that
`genlab evaluate` reports, a command of its own and an endpoint of `genlab serve`; and the model
trains, resumes, samples and averages its weights like any other."""
import json
import re
import sys
import types
from pathlib import Path

import pytest
import torch

from genlab import registry
from genlab.cli import main
from genlab.train import load_run, train

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


@pytest.fixture
def registered(monkeypatch):
    code = re.search(r"```python\n(# families/pixel_gaussian/__init__.py\n.*?)```", DOC.read_text(), re.S)[1]
    module = types.ModuleType("pixel_gaussian")   # not under genlab: a family kept outside the package
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, str(DOC), "exec"), module.__dict__)
    registry.register(module.FAMILY)              # the registry line
    yield module
    registry.unregister(module.FAMILY.name)


def test_the_documented_family_trains_resumes_and_samples(registered, digits_train, digits_test, tmp_path):
    out = tmp_path / "run"
    train("pixel-gaussian", digits_train, digits_test, out_dir=out, epochs=2, lr=0.05, progress=False,
          model_settings={"ema_decay": 0.9})
    train("pixel-gaussian", digits_train, digits_test, out_dir=out, epochs=4, lr=0.05, progress=False,
          resume=True)
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4] and log[-1]["train/loss"] < log[0]["train/loss"]
    assert "val/loss" in log[-1]   # a held-out loss, as the model declares
    run = load_run(out)
    x = digits_train.tensors()[0]
    torch.testing.assert_close(run.model.mean, x.mean(0), atol=0.1, rtol=0)  # it learned the pixel means
    assert run.model.sample(8, generator=torch.Generator().manual_seed(0)).shape == (8, 1, 8, 8)
    assert not torch.equal(run.model.network("mean"), run.model.mean)      # eval mode: the average
    train("pixel-gaussian", digits_train, None, out_dir=tmp_path / "bf16", epochs=1, precision="bf16",
          progress=False)


def test_its_settings_are_flags_and_its_command_is_listed(registered, capsys):
    with pytest.raises(SystemExit):
        main(["train", "pixel-gaussian", "--help"])
    help_text = capsys.readouterr().out
    assert re.search(r"--spread \{per-pixel,shared\}", help_text), help_text
    assert "--mirror" in help_text and "--init-log-sigma" in help_text
    assert "one standard deviation per pixel, or one shared by all" in " ".join(help_text.split())
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "pixel-sigma" in capsys.readouterr().out


def test_its_data_hook_measure_command_and_endpoint_work(registered, tmp_path, capsys):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from genlab.serve import create_app

    runs = {}
    for mirror in ("--mirror", "--no-mirror"):
        out = tmp_path / mirror.strip("-")
        assert main(["train", "pixel-gaussian", "--data", "digits", mirror, "--spread", "shared", "--epochs", "6",
                     "--lr", "0.05", "--seed", "0", "--quiet", "--out", str(out)]) == 0
        runs[mirror] = load_run(out)
    capsys.readouterr()
    # The data hook: trained on mirrored copies, the mean image is nearer its own mirror image.
    asymmetry = {k: float((r.model.mean - r.model.mean.flip(-1)).abs().mean().detach()) for k, r in runs.items()}
    assert asymmetry["--mirror"] < 0.3 * asymmetry["--no-mirror"], asymmetry
    assert runs["--mirror"].model.log_sigma.shape == (1,)              # --spread shared reached the model
    # The measure: `genlab evaluate` adds it to its table and its JSON.
    out = runs["--mirror"].path
    assert main(["evaluate", str(out)]) == 0
    assert "test_nll_nats" in capsys.readouterr().out
    figures = json.loads((out / "evaluation-test.json").read_text())
    with torch.no_grad():
        expected = float(runs["--mirror"].model.loss(runs["--mirror"].dataset("test").tensors()[0])["loss"])
    assert figures["test_nll_nats"] == pytest.approx(expected, rel=1e-5)
    # The command of its own.
    assert main(["pixel-sigma", str(out)]) == 0
    assert capsys.readouterr().out.startswith("sigma: mean ")
    # The endpoint, beside the core's.
    client = TestClient(create_app(out))
    sigma = client.get("/api/pixel-sigma")
    assert sigma.status_code == 200
    assert sigma.json()["mean"] == pytest.approx(float(runs["--mirror"].model.network("log_sigma").detach().exp().mean()))
    assert client.post("/api/sample", json={"n": 4, "seed": 0}).status_code == 200


def test_a_family_is_gone_once_unregistered(registered):
    registry.unregister("pixel-gaussian")
    with pytest.raises(Exception, match="unknown model 'pixel-gaussian'"):
        registry.build_model("pixel-gaussian", image_shape=(1, 8, 8))
    registry.register(registered.FAMILY)   # for the fixture's own unregister
