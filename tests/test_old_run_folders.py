"""Run folders written by genlab at commit 4f1b47e still load and give the same outputs.

Each folder of tests/fixtures/runs-4f1b47e/ is a tiny run of one model name, trained by the old
code (tests/fixtures/make_runs_4f1b47e.py), with expected.safetensors (a fixed input and the
outputs the old code computed from the loaded run) and expected.json (how to replay each
output). Only the public surface is used: ``genlab.load_run(path).model`` and its methods.
"""
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genlab

FIXTURES = Path(__file__).parent / "fixtures" / "runs-4f1b47e"
NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())


def replay(model, tensors: dict[str, torch.Tensor], spec: dict) -> torch.Tensor:
    """``getattr(model, method)(*args, **kwargs)``: "$NAME" is the tensor NAME of
    expected.safetensors, a kwarg ``generator`` a seed; ``index`` picks from a tuple result."""
    def value(v):
        return tensors[v[1:]] if isinstance(v, str) and v.startswith("$") else v

    args = [value(a) for a in spec["args"]]
    kwargs = {k: (torch.Generator().manual_seed(v) if k == "generator" else value(v))
              for k, v in spec["kwargs"].items()}
    with torch.no_grad():
        out = getattr(model, spec["method"])(*args, **kwargs)
    if "index" in spec:
        out = out[spec["index"]]
    return out.detach().cpu()


def test_every_model_name_has_a_fixture():
    assert len(NAMES) >= 22, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_old_run_folder_loads_and_gives_the_same_outputs(name, tmp_path):
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    doc = json.loads((folder / "expected.json").read_text())
    expected = load_file(str(folder / "expected.safetensors"))
    model = genlab.load_run(folder).model
    assert model.name == doc["model"]
    assert not model.training
    assert doc["outputs"], f"{name} records no outputs"
    for spec in doc["outputs"]:
        got, want = replay(model, expected, spec), expected[spec["key"]]
        if want.is_floating_point():
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=lambda m: f"{name}.{spec['key']}: {m}")
        else:
            assert got.dtype == want.dtype and torch.equal(got, want), f"{name}.{spec['key']} differs"


def test_a_run_folder_of_a_former_family_name_is_that_family(tmp_path):
    """An old folder's config.json says "image2image", the family's former name: asking for
    the family by its name today finds it, and another family does not."""
    shutil.copytree(FIXTURES / "denoise", tmp_path / "run")
    assert genlab.load_run(tmp_path / "run", family="image-to-image").model.name == "denoise"
    with pytest.raises(genlab.GenlabError, match="holds a image2image model, not a vae model"):
        genlab.load_run(tmp_path / "run", family="vae")
