"""CycleGAN: unpaired data, the history pool, training, resume, measures and translate."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.cli import main
from genlab.commands.translate import translate_files
from genlab.data import load_dataset, unpaired
from genlab.data.batch import Batch, StepNoise
from genlab.errors import GenlabError
from genlab.registry import build_model, load_model
from genlab.families.cyclegan.model import HistoryPool
from genlab.train import load_run
from genlab.train.trainer import Trainer

SMALL = {"domain_b": "digits-m", "channels": (8, 16), "d_channels": 8}


@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory, two_threads):
    """digits28 <-> digits-m from the command line: U-Nets (16, 32), PatchGANs of width 16, 2 epochs."""
    out = tmp_path_factory.mktemp("cyclegan") / "run"
    with two_threads():
        assert main(["train", "cyclegan", "--data", "digits28", "--domain-b", "digits-m", "--epochs", "2",
                     "--channels", "16,32", "--set", "d_channels=16", "--quiet", "--out", str(out)]) == 0
    return out


def test_unpaired_brings_every_image_of_the_second_domain_once():
    a, b = load_dataset("digits28", "test"), load_dataset("digits-m", "test")
    joined = unpaired(a, b, seed=3)
    assert torch.equal(joined.images, a.images) and torch.equal(joined.labels, a.labels)
    assert joined.condition_shape == (3, 28, 28)
    # a permutation of b: the same images with their own labels, in another order
    order = [int(np.flatnonzero((b.images == c).flatten(1).all(1))[0]) for c in joined.conditions[:40]]
    assert torch.equal(joined.condition_labels[:40], b.labels[order])
    assert sorted(joined.condition_labels.tolist()) == sorted(b.labels.tolist())
    assert not torch.equal(joined.condition_labels, b.labels)
    short = unpaired(a, b.subset(slice(0, 7)), seed=0)   # a smaller domain repeats
    assert len(short.conditions) == len(a) and torch.equal(short.conditions[:7].sort(0)[0],
                                                           b.images[:7].sort(0)[0])


def test_a_fresh_cyclegan_is_the_identity_between_the_domains():
    model = build_model("cyclegan", image_shape=(1, 28, 28), condition_shape=(3, 28, 28), **SMALL).eval()
    a, b = torch.rand(3, 1, 28, 28), torch.rand(3, 3, 28, 28)
    assert torch.equal(model.translate(a), a.expand(-1, 3, -1, -1))
    assert torch.equal(model.translate(b, "b-to-a"), b.mean(1, keepdim=True))
    assert model.config.identity_weight == 0.0   # grey and colour: no identity term
    same = build_model("cyclegan", image_shape=(3, 28, 28), condition_shape=(3, 28, 28), **SMALL)
    assert same.config.identity_weight == 0.5
    assert model.translate(torch.rand(1, 1, 13, 10)).shape == (1, 3, 13, 10)   # padded and cropped back
    with pytest.raises(GenlabError, match="unknown direction"):
        model.translate(a, "sideways")


def test_the_history_pool_fills_then_swaps_half_of_the_time():
    pool = HistoryPool(4, (1, 2, 2))
    noise = StepNoise(seed=0, step=0, size=6)
    fakes = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 1, 2, 2).clone()
    out = pool.exchange(fakes, Batch(fakes, positions=torch.arange(6), noise=noise))
    assert torch.equal(out[:4], fakes[:4]) and int(pool.filled) == 4   # filling: the fakes themselves
    # once full, the rule run by hand on the same draws: the stored image when the coin is below 1/2
    # (the fake takes its slot), else the fake itself
    coin, slot = noise.draw(0, "rand", (), 0), noise.draw(1, "randint", (), 4)
    stored, shown = [0.0, 1.0, 2.0, 3.0], []
    for i in (4, 5):
        if coin[i] < 0.5:
            shown.append(stored[int(slot[i])])
            stored[int(slot[i])] = float(i)
        else:
            shown.append(float(i))
    assert out[4:, 0, 0, 0].tolist() == shown and pool.images[:, 0, 0, 0].tolist() == stored
    with torch.no_grad():
        many = HistoryPool(10, (1,))
        fakes = torch.arange(2000.0).view(2000, 1)
        seen = many.exchange(fakes, Batch(fakes, positions=torch.arange(2000), noise=StepNoise(1, 0, 2000)))
    assert 0.45 < float((seen[10:] != fakes[10:]).float().mean()) < 0.55   # half of them come from the pool


def test_cyclegan_trains_from_one_command_and_is_measured(cycle_run):
    lines = [json.loads(line) for line in (cycle_run / "metrics.jsonl").read_text().splitlines()]
    assert {"train/adv", "train/cycle", "train/d_loss", "val/cycle"} <= set(lines[-1])
    assert lines[-1]["lr"] < 0.5 * lines[0]["lr"]   # linear decay in the second half
    config = json.loads((cycle_run / "config.json").read_text())
    assert config["model"]["domain_b"] == "digits-m" and config["data"]["name"] == "digits28"
    assert main(["evaluate", str(cycle_run)]) == 0
    r = json.loads((cycle_run / "evaluation-test.json").read_text())
    for d in ("a_to_b", "b_to_a"):
        assert {"fid", "baseline_fid", "fid_floor", "content_kept", "cycle_l1", "classifier_accuracy"} <= {
            k.split("/")[1] for k in r if k.startswith(d)}
        assert r[f"{d}/cycle_l1"] < 0.15 and 0 <= r[f"{d}/content_kept"] <= 1
    # grey digits -> blends: closer to the blends than the grey digits are, and mostly the same digit
    assert r["a_to_b/fid"] < r["a_to_b/baseline_fid"]
    assert r["a_to_b/content_kept"] > 0.5
    assert (cycle_run / "snapshots" / "progress.gif").exists()
    # the pools are in the weights file, so a resumed run goes on with them
    model = load_model(cycle_run)
    assert int(model.pool_a.filled) == model.config.pool_size
    x = load_dataset("digits28", "test").tensors(slice(0, 4))[0]
    assert torch.equal(model.translate(x), load_run(cycle_run).model.translate(x))   # saved and loaded exactly


def test_an_interrupted_cyclegan_resumes_as_if_uninterrupted(tmp_path, monkeypatch):
    """Ctrl-C at step 6 of 8, mid-epoch, while the pools (24 images, 16 a step) have just filled:
    the resumed run ends with the same weights and pools as an uninterrupted one."""
    a = load_dataset("digits28", "train").subset(slice(0, 64))
    settings = dict(epochs=2, batch_size=16, progress=False, snapshot_every=-1,
                    model_settings=dict(SMALL, pool_size=24))
    whole = genlab.train("cyclegan", a, None, out_dir=tmp_path / "whole", **settings)
    calls, original = {"n": 0}, Trainer._step

    def interrupt_at_step_6(self, *args):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_step", interrupt_at_step_6)
    with pytest.raises(GenlabError, match="interrupted at step 5"):
        genlab.train("cyclegan", a, None, out_dir=tmp_path / "cut", **settings)
    monkeypatch.setattr(Trainer, "_step", original)
    resumed = genlab.train("cyclegan", a, None, out_dir=tmp_path / "cut", resume=True,
                           **{k: v for k, v in settings.items() if k != "model_settings"})
    assert int(whole.pool_a.filled) == 24
    for (k, v), w in zip(resumed.state_dict().items(), whole.state_dict().values()):
        assert torch.equal(v, w), k


@pytest.mark.parametrize("settings,message", [
    ({"domain_b": None}, "name the second with `domain_b`"),
    ({"condition_shape": (3, 32, 32)}, "must have images of the same size"),
    ({"identity_weight": 0.5}, "needs domains of one channel count; A has 1, B (digits-m) 3"),
    ({"generator": "vit"}, "unknown generator 'vit'"),
    ({"channels": (4, 8, 16, 32, 64, 128)}, "halve the image 5 times"),
])
def test_bad_cyclegan_settings_are_one_clear_line(settings, message):
    with pytest.raises(GenlabError) as err:
        build_model("cyclegan", **{"image_shape": (1, 28, 28), "condition_shape": (3, 28, 28), **SMALL, **settings})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_second_domain_given_relative_to_here_is_recorded_absolute(tmp_path, monkeypatch):
    """A run finds its second domain from any folder later (evaluate, resume, serve)."""
    (tmp_path / "photos").mkdir()
    monkeypatch.chdir(tmp_path)
    settings = {"image_shape": (1, 28, 28), "condition_shape": (1, 28, 28), **SMALL}
    model = build_model("cyclegan", **{**settings, "domain_b": "folder:photos,size=28"})
    assert model.config.domain_b == f"folder:{tmp_path / 'photos'},size=28"
    assert build_model("cyclegan", **{**settings, "domain_b": "mnist"}).config.domain_b == "mnist"


def test_domains_of_different_sizes_from_the_command_line(tmp_path, capsys):
    assert main(["train", "cyclegan", "--data", "digits", "--domain-b", "digits-m", "--quiet",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "same size; A is 1x8x8, B (digits-m) is 3x28x28" in err and err.count("\n") == 1


def test_translate_png_files_both_ways(cycle_run, tmp_path, capsys):
    a = (load_dataset("digits28", "test").images[0, 0] * 255).round().byte().numpy()
    b = load_dataset("digits-m", "test").images[0].permute(1, 2, 0).numpy()
    Image.fromarray(a).save(tmp_path / "grey.png")
    Image.fromarray(b).save(tmp_path / "blend.png")
    assert main(["translate", str(cycle_run), str(tmp_path / "grey.png")]) == 0
    out = Image.open(tmp_path / "grey-a-to-b.png")
    assert out.mode == "RGB" and out.size == (28, 28)
    assert main(["translate", str(cycle_run), str(tmp_path / "blend.png"), "--direction", "b-to-a",
                 "--out", str(tmp_path / "o")]) == 0
    assert Image.open(tmp_path / "o" / "blend-b-to-a.png").mode == "L"
    capsys.readouterr()
    assert main(["translate", str(cycle_run), str(tmp_path / "blend.png")]) == 2   # a colour file for domain A
    assert "colour" in capsys.readouterr().err
    with pytest.raises(GenlabError, match="`direction` is for a CycleGAN run"):
        translate_files(build_model("denoise", image_shape=(1, 8, 8), channels=(4,)), [tmp_path / "grey.png"],
                        direction="b-to-a")


def test_the_server_translates_uploads_from_a_to_b(cycle_run):
    pytest.importorskip("fastapi")
    import io

    from fastapi.testclient import TestClient

    from genlab.serve import create_app

    client = TestClient(create_app(cycle_run))
    info = client.get("/api/info").json()["capabilities"]
    assert info["condition_image"] and info["domain_transfer"]
    buffer = io.BytesIO()
    Image.fromarray(np.full((28, 28), 120, np.uint8)).save(buffer, format="PNG")
    response = client.post("/api/translate", files={"image": ("x.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 200, response.text
    assert np.asarray(Image.open(io.BytesIO(response.content))).shape == (28, 28, 3)   # grey A in, colour B out


def test_the_resnet_generator_starts_as_the_identity_and_trains():
    model = build_model("cyclegan", image_shape=(3, 16, 16), condition_shape=(3, 16, 16), domain_b="photos",
                        generator="resnet", channels=(8, 16), blocks=2, d_channels=8)
    a, b = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    model.eval()
    assert torch.equal(model.translate(a), a) and model.translate(torch.rand(1, 3, 10, 14)).shape == (1, 3, 10, 14)
    model.train()
    batch = Batch(a, condition=b)
    loss, terms = model.objective("generators", batch, 0)
    loss.backward()
    assert model.gen_ab.body[1].weight.grad is not None and {"adv", "cycle", "identity"} <= set(terms)
    d_loss, _ = model.objective("discriminators", batch, 0)
    d_loss.backward()
    assert model.disc_a.body[0].weight.grad is not None and int(model.pool_a.filled) == 4


def test_the_semantic_term_keeps_the_class_and_trains_its_classifier_apart(tmp_path):
    """CyCADA's term: f_a learns A's labels from A, f_b from A's translations, in their own
    objective; the generators' term is the cross-entropy of f_a, held fixed, on both translations
    (against a's labels and f_b's reading of b), computed here by hand; a run with it reloads."""
    import torch.nn.functional as F

    a = load_dataset("digits28", "train").subset(slice(0, 48))
    model = genlab.train("cyclegan", a, None, out_dir=tmp_path / "run", epochs=1, batch_size=16, progress=False,
                         snapshot_every=-1, model_settings=dict(SMALL, semantic_weight=1.0))
    assert set(model.optimizer_groups()) == {"generators", "discriminators", "classifiers"}
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "train/semantic" in records[-1] and "train/c_loss" in records[-1]
    joined = unpaired(a, load_dataset("digits-m", "train"))
    batch = joined.batch(slice(0, 8))
    model.train()
    _, terms = model.objective("generators", batch, 0)
    f_a, f_b = model.classifier_a, model.classifier_b
    with torch.no_grad():
        fake_b, fake_a = model.to_b(batch.images), model.to_a(batch.condition)
        want = (F.cross_entropy(f_a(fake_b.mean(1, keepdim=True)), batch.labels)
                + F.cross_entropy(f_a(fake_a), f_b(batch.condition).argmax(1)))
    torch.testing.assert_close(terms["semantic"], want)
    # the generators' objective leaves the classifier's gradients alone, and the classifier's the generators'
    model.zero_grad(set_to_none=True)
    loss, _ = model.objective("generators", batch, 0)
    loss.backward()
    assert all(p.grad is None for p in [*f_a.parameters(), *f_b.parameters()])
    assert any(p.grad is not None for p in model.gen_ba.parameters())
    model.zero_grad(set_to_none=True)
    model.objective("generators", batch, 0)   # leaves the translations for the classifiers' objective
    model.zero_grad(set_to_none=True)
    c_loss, _ = model.objective("classifiers", batch, 0)
    c_loss.backward()
    assert all(p.grad is None for p in model.gen_ab.parameters())
    assert all(p.grad is not None for p in [*f_a.parameters(), *f_b.parameters()])
    reloaded = load_run(tmp_path / "run").model
    assert torch.equal(reloaded.classifier_b.head.weight, f_b.head.weight)
    unlabelled = Batch(batch.images, condition=batch.condition)
    with pytest.raises(GenlabError, match="needs labels for domain A"):
        model.objective("generators", unlabelled, 0)
    with pytest.raises(GenlabError, match="needs labels for domain A"):
        build_model("cyclegan", image_shape=(1, 28, 28), condition_shape=(3, 28, 28), semantic_weight=1.0,
                    **{k: v for k, v in SMALL.items()})
