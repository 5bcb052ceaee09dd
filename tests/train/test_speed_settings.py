"""The speed settings: precision ``auto``, channels-last convolutions, the OpenMP waits, and the
families that train with them by default."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.registry import build_model
from genlab.train import train
from genlab.train import trainer as trainer_module
from genlab.train.trainer import (_family_train_defaults, build_optimizers, match_layouts, resolve_precision,
                                  to_channels_last)

GAN = {"channels": 8, "latent_dim": 8}


@pytest.fixture(scope="module")
def small(digits_train):
    return digits_train.subset(slice(0, 128))


def cpu_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":")[1].split()}


def test_auto_precision_is_bf16_where_the_device_computes_it_natively(monkeypatch):
    cpu = torch.device("cpu")
    flags = cpu_flags()
    if flags:  # the CPU's own word: AVX-512 BF16 or AMX
        assert trainer_module.native_bf16(cpu) == bool({"avx512_bf16", "amx_bf16"} & flags)
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(trainer_module, "native_bf16", lambda device, native=native: native)
        assert resolve_precision("auto", cpu) == expected


def test_channels_last_moves_the_convolution_weights_only_and_keeps_their_values():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv3d(1, 2, 3), torch.nn.Linear(2, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    to_channels_last(net)
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last) and not net[0].weight.is_contiguous()
    assert net[1].weight.stride() == (27, 1, 9, 3, 1)   # (out, in, d, h, w) with the channel fastest
    assert net[2].weight.is_contiguous()
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_channels_last_one_channel_convolutions_write_channels_last_also_with_spectral_norm():
    # A (C, 1, k, k) weight fits both layouts; left with NCHW strides, the convolution of a
    # one-channel image writes NCHW and every later channels-last layer copies its input.
    sn = torch.nn.utils.parametrizations.spectral_norm
    cases = [(torch.nn.Conv2d(1, 4, 3, padding=1), torch.rand(2, 1, 8, 8), torch.channels_last),
             (torch.nn.Conv3d(1, 4, 3, padding=1), torch.rand(2, 1, 6, 6, 6), torch.channels_last_3d)]
    for conv, image, layout in cases:
        for net in (conv, sn(copy.deepcopy(conv))):
            assert net(image).is_contiguous()
            to_channels_last(net)
            out = net(image)
            assert out.is_contiguous(memory_format=layout) and not out.is_contiguous()


def test_channels_last_trains_the_run_of_the_default_layout(small, tmp_path):
    runs, logs = {}, {}
    for layout in (False, True):
        out = tmp_path / str(layout)
        runs[layout] = train("dcgan", small, None, out_dir=out, epochs=2, batch_size=32, precision="fp32",
                             channels_last=layout, model_settings=GAN, snapshot_every=-1, progress=False)
        logs[layout] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    conv = runs[True].generator.body[4].weight                       # the first transposed convolution
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    for a, b in zip(logs[False], logs[True]):                         # the same losses, up to rounding
        for key in ("train/d_loss", "train/g_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-3)
    made = [m.sample(8, generator=torch.Generator().manual_seed(0)) for m in (runs[False], runs[True])]
    torch.testing.assert_close(made[0], made[1], rtol=0, atol=1e-3)
    # The checkpoint holds the same weights, and loads into a model of the default layout.
    from genlab.registry import load_model
    loaded = load_model(tmp_path / "True")
    for (k, v), w in zip(runs[True].state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(v, w), k
    # An interrupted channels-last run resumes to the same weights as one run straight through.
    train("dcgan", small, None, out_dir=tmp_path / "halves", epochs=1, batch_size=32, precision="fp32",
          channels_last=True, model_settings=GAN, snapshot_every=-1, progress=False)
    resumed = train("dcgan", small, None, out_dir=tmp_path / "halves", epochs=2, resume=True, progress=False)
    for (k, v), w in zip(runs[True].state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(v, w), k


def test_the_gans_vaes_and_diffusion_train_fast_by_default_and_the_run_says_how(small, tmp_path):
    # the GANs' and diffusion's batches and learning rates are their benchmarks' (time_to_quality.py)
    assert _family_train_defaults("dcgan") == {"precision": "auto", "channels_last": True, "batch_size": 64, "lr": 2e-4}
    assert _family_train_defaults("diffusion") == {"precision": "auto", "batch_size": 64, "lr": 2e-3}
    assert _family_train_defaults("conv-vae") == {"precision": "auto"}
    assert "precision" not in _family_train_defaults("porous-gan")          # fp32, as its statistics were measured
    assert _family_train_defaults("porous-gan")["channels_last"] is True      # its one-channel cubes: see gan3d
    assert "precision" not in _family_train_defaults("conv-ae")
    model = train("dcgan", small, None, out_dir=tmp_path / "gan", epochs=1, batch_size=32, model_settings=GAN,
                  snapshot_every=-1, progress=False)
    saved = json.loads((tmp_path / "gan" / "config.json").read_text())["train"]
    assert saved["precision"] == resolve_precision("auto", torch.device("cpu"))   # what it used, not "auto"
    assert saved["channels_last"] is True
    assert model.generator.body[4].weight.is_contiguous(memory_format=torch.channels_last)
    assert main(["train", "dcgan", "--data", "digits", "--epochs", "1", "--precision", "fp32", "--no-channels-last",
                 "--channels", "8", "--quiet", "--out", str(tmp_path / "cli"), "--set", "snapshot_every=-1"]) == 0
    saved = json.loads((tmp_path / "cli" / "config.json").read_text())["train"]
    assert saved["precision"] == "fp32" and saved["channels_last"] is False


def test_the_fused_optimizer_takes_the_multi_tensor_steps_whatever_the_layouts():
    w0, g = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    taken = []
    for fused in (False, True):
        p = torch.nn.Parameter(w0.clone().contiguous(memory_format=torch.channels_last))
        opt = torch.optim.AdamW([p], lr=0.1, fused=fused or None)
        for scale in (1.0, -0.5):
            p.grad = g * scale  # contiguous, unlike the weight (as a data-parallel bucket holds it)
            match_layouts(opt)
            opt.step()
        opt.state[p]["exp_avg"] = opt.state[p]["exp_avg"].contiguous()   # as a checkpoint loads it
        p.grad = g.clone()
        match_layouts(opt)
        opt.step()
        taken.append(p.detach().clone())
    torch.testing.assert_close(taken[1], taken[0])
    model = build_model("dcgan", image_shape=(1, 8, 8), **GAN)
    assert all(o.defaults["fused"] for o in build_optimizers(model, 1e-3).values())
    assert not any(o.defaults["fused"] for o in build_optimizers(model, 1e-3, fused=False).values())


def test_the_discriminator_scores_in_fp32_under_bf16_autocast():
    gan = build_model("dcgan", image_shape=(1, 8, 8), **GAN)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = gan.discriminator(torch.rand(3, 1, 8, 8))
    assert scores.dtype == torch.float32 and scores.shape == (3,)


def test_a_batch_of_one_image_with_batch_norm_is_refused_in_one_line(small, tmp_path):
    with pytest.raises(GenlabError, match="batch norm needs at least 2 images"):
        train("dcgan", small, None, out_dir=tmp_path, epochs=1, batch_size=1, model_settings=GAN, progress=False)
    with pytest.raises(GenlabError, match="lower `grad_accumulation`"):
        train("dcgan", small, None, out_dir=tmp_path, epochs=1, batch_size=4, grad_accumulation=4,
              model_settings=GAN, progress=False)


def openmp_settings(env: dict) -> dict:
    code = ("import json, os, genlab; "
            "print(json.dumps({k: os.environ.get(k) for k in ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_genlab_spins_briefly_unless_the_user_chose_the_openmp_waits():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    assert openmp_settings(env) == {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "30000"}
    assert openmp_settings({**env, "OMP_WAIT_POLICY": "PASSIVE"}) == {"OMP_WAIT_POLICY": "PASSIVE",
                                                                      "GOMP_SPINCOUNT": None}
    assert openmp_settings({**env, "GOMP_SPINCOUNT": "0"})["GOMP_SPINCOUNT"] == "0"
