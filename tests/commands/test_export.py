"""``genlab export``: a run's decoder (a VAE's, a DCGAN's and a conditional GAN's generator) or its
image-to-image network (a denoiser) as a TorchScript or ONNX file that gives the model's outputs,
checked on inputs other than the ones it was traced with; one clear line for everything refused."""
import importlib.util
import warnings

import pytest
import torch

from genlab.cli import main
from genlab.commands import export as export_module
from genlab.commands.export import export_run
from genlab.data import load_dataset
from genlab.errors import GenlabError
from genlab.registry import build_model
from genlab.train import load_run, train

#: tiny models, one epoch on 64 digits: about a second for the four
SETTINGS = {"conv-vae": {"latent_dim": 3, "channels": (8, 16), "blocks_per_stage": 1},
            "dcgan": {"channels": 8}, "cgan": {"channels": 8}, "denoise": {"channels": (4, 8)}}
HAS_ONNXRUNTIME = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    data = load_dataset("digits", "train").subset(slice(0, 64))
    for name, settings in SETTINGS.items():
        train(name, data, out_dir=root / name, epochs=1, batch_size=32, progress=False, snapshot_every=-1,
              model_settings=settings)
    return root


def inputs_and_expected(model, size=8):
    """Inputs other than the ones the export was traced with (5 of them; 16x16 images for the
    denoiser, traced at 8x8), and the model's own outputs for them."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        if model.capabilities.condition_image:
            x = torch.rand(5, 1, size, size, generator=g)
            return (x,), model.translate(x)
        z = torch.randn(5, model.latent_dim, generator=g)
        if model.conditional:
            labels = torch.tensor([0, 3, 9, 1, 7])
            return (z, labels), model.decode(z, labels)
        return (z,), model.decode(z)


def load_torchscript(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # TorchScript is deprecated in favour of torch.export
        return torch.jit.load(str(path))


@pytest.mark.parametrize("name", list(SETTINGS))
def test_torchscript_round_trip(runs, name, capsys):
    assert main(["export", str(runs / name)]) == 0
    out = capsys.readouterr().out.splitlines()
    part = "translator" if name == "denoise" else "decoder"
    path = runs / name / f"{part}.pt"
    assert out[0] == f"written to {path}", out
    model = load_run(runs / name).model
    if name == "denoise":
        assert out[1] == "input: x (N, 1, H, W) float32" and out[2].startswith("output: images (N, 1, H, W) float32")
    else:
        width = model.latent_dim
        labels = ", labels (N,) int64 (class indices)" if name == "cgan" else ""
        assert out[1] == f"input: z (N, {width}) float32{labels}", out
        assert out[2].startswith("output: images (N, 1, 8, 8) float32"), out
    assert "matches the model's" in out[3] and "takes other batch sizes" in out[3], out

    exported = load_torchscript(path)
    inputs, expected = inputs_and_expected(model, 16 if name == "denoise" else 8)
    with torch.no_grad():
        got = exported(*inputs)
    assert got.shape == expected.shape and torch.allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert not any(p.numel() for p in exported.parameters())   # frozen: weights inlined, only the part used


@pytest.mark.skipif(not HAS_ONNXRUNTIME, reason="onnx and onnxruntime are not installed (pip install 'genlab[export]')")
@pytest.mark.parametrize("name", ["conv-vae", "cgan", "denoise"])
def test_onnx_round_trip(runs, name, tmp_path):
    import onnxruntime

    lines = []
    path = export_run(runs / name, "onnx", tmp_path / "part.onnx", report=lines.append)
    assert path == tmp_path / "part.onnx" and "takes other batch sizes" in lines[-1], lines
    model = load_run(runs / name).model
    inputs, expected = inputs_and_expected(model, 16 if name == "denoise" else 8)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == (["x"] if name == "denoise" else ["z", "labels"] if name == "cgan" else ["z"])
    got = torch.from_numpy(session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0])
    assert got.shape == expected.shape and torch.allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_onnx_without_the_package_says_what_to_install(runs, capsys, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(export_module.importlib.util, "find_spec",
                        lambda name, *args: None if name == "onnx" else find_spec(name, *args))
    assert main(["export", str(runs / "dcgan"), "--format", "onnx", "--out", str(runs / "g.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the onnx package" in err and "pip install onnx onnxruntime" in err
    assert not (runs / "g.onnx").exists()


def test_an_existing_file_is_kept_unless_overwrite(runs, tmp_path, capsys):
    target = tmp_path / "generator.pt"
    target.write_bytes(b"mine")
    assert main(["export", str(runs / "dcgan"), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--overwrite" in err, err
    assert target.read_bytes() == b"mine"
    assert main(["export", str(runs / "dcgan"), "--out", str(target), "--overwrite"]) == 0
    assert load_torchscript(target)(torch.zeros(1, 64)).shape == (1, 1, 8, 8)


def test_a_model_with_neither_part_gets_one_line(tmp_path):
    codec = build_model("codec", image_shape=(1, 8, 8))
    assert not codec.capabilities.decoder and not codec.capabilities.condition_image
    with pytest.raises(GenlabError, match="neither a decoder .* nor an image-to-image network"):
        export_run(codec, "torchscript", tmp_path / "codec.pt")
    assert not (tmp_path / "codec.pt").exists()


def test_a_trace_that_depends_on_the_input_values_is_refused(runs, tmp_path):
    model = load_run(runs / "dcgan").model
    decode = model.decode
    model.decode = lambda z, labels=None: decode(z) * float(z[0, 0].abs())   # a Python number: fixed by the trace
    with pytest.raises(GenlabError, match="differs by up to .* on a second input.*does not trace faithfully"):
        export_run(model, "torchscript", tmp_path / "g.pt")
    assert not (tmp_path / "g.pt").exists()


@pytest.mark.parametrize("argv, message", [
    (["{dcgan}", "--direction", "a-to-b"], "--direction is for a run that translates both ways"),
    (["{denoise}", "--direction", "b-to-a"], "translates both ways"),
    (["{dcgan}", "--batch-size", "0"], "--batch-size"),
    (["{dcgan}", "--out", "{tmp}/g.png"], "ending in .pt"),
    (["{dcgan}", "--out", "{tmp}/g.onnx"], "ending in .pt, .pth, .ts"),
    (["{dcgan}", "--out", "{dcgan}/config.json"], "ending in .pt"),
    (["{tmp}/nosuchrun"], "no run folder"),
])
def test_bad_input_is_one_clear_line(runs, tmp_path, capsys, argv, message):
    argv = [a.format(dcgan=runs / "dcgan", denoise=runs / "denoise", tmp=tmp_path) for a in argv]
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
