"""The command line end to end, and its one-line errors."""
import json

import numpy as np
import pytest
from PIL import Image

from genlab.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_sample_reconstruct_encode_evaluate(tmp_path, capsys):
    out = tmp_path / "vae"
    code, text, _ = run(capsys, "train", "conv-cvae", "--data", "digits", "--epochs", "2", "--latent-dim", "3",
                        "--channels", "8,16", "--blocks-per-stage", "1", "--out", out, "--quiet", "--set", "activation=silu", "--lr", "0.002", "--set", "snapshot_every=5")
    assert code == 0 and str(out) in text
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["activation"] == "silu" and config["model"]["channels"] == [8, 16]
    assert config["model"]["blocks_per_stage"] == 1
    assert config["train"]["epochs"] == 2 and config["train"]["lr"] == 0.002
    assert config["train"]["snapshot_every"] == 5 and (out / "snapshots" / "step-0000020.png").exists()

    code, text, _ = run(capsys, "sample", out, "-n", 10, "--label", 7)
    assert code == 0 and Image.open(text.strip()).size[0] > 0
    code, text, _ = run(capsys, "reconstruct", out, "-n", 8)
    assert code == 0 and (out / "reconstructions.png").exists()
    code, text, _ = run(capsys, "encode", out)
    codes = np.load(text.strip())
    assert codes["z"].shape == (300, 3) and codes["labels"].shape == (300,)
    code, text, _ = run(capsys, "evaluate", out, "--mc-samples", 2)
    results = json.loads((out / "evaluation-test.json").read_text())
    assert code == 0 and results["elbo"] < 0 and results["kl"] > 0 and "bits_per_dim" in text

    # Resume with more epochs continues the same run.
    code, _, _ = run(capsys, "train", "conv-cvae", "--out", out, "--resume", "--epochs", 3, "--quiet")
    assert code == 0 and len((out / "metrics.jsonl").read_text().splitlines()) == 3
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 3


@pytest.mark.parametrize("argv, message", [
    (["train", "vae", "--data", "nosuch"], "unknown dataset 'nosuch'"),
    (["train", "vae", "--data", "folder:/nonexistent/x"], "/nonexistent/x"),
    (["train", "vae", "--data", "mnist", "--data-dir", "{tmp}"], "train-images-idx3-ubyte"),
    (["train", "vae", "--set", "latnt_dim=3"], "unknown setting(s) latnt_dim"),
    (["train", "conv-ae", "--channels", "8,16,32,64"], "divisible by 16"),
    (["sample", "{tmp}/missing"], "no run folder at"),
    (["train", "vae", "--config", "{tmp}/nope.json"], "config file"),
])
def test_bad_input_is_one_clear_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("genlab.data.idx.download", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")),
                        raising=False)
    code, _, err = run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2
    assert err.startswith("genlab: error: ") and err.count("\n") == 1 and message in err, err


def test_sampling_an_autoencoder_says_it_has_no_prior(tmp_path, capsys):
    out = tmp_path / "ae"
    assert run(capsys, "train", "ae", "--epochs", 1, "--hidden", "32", "--out", out, "--quiet")[0] == 0
    code, _, err = run(capsys, "sample", out)
    assert code == 2 and "no prior" in err
    code, _, err = run(capsys, "sample", out, "--label", 3)
    assert code == 2 and "conditional" in err
    code, _, err = run(capsys, "train", "vae", "--out", out, "--quiet")
    assert code == 2 and "already holds a run" in err


def test_datasets_lists_every_dataset(capsys):
    code, text, _ = run(capsys, "datasets")
    assert code == 0
    for name in ("digits", "digits28", "mnist", "fashion-mnist", "folder:PATH", "npz:PATH"):
        assert name in text


def test_library_messages_name_settings_and_the_cli_names_its_flags():
    from genlab.cli import as_flags

    flags = {"--resume", "--out", "--lr", "--likelihood", "--set"}
    assert as_flags("continue it with `resume=True` `out_dir=runs/a`", flags) == \
        "continue it with --resume --out runs/a"
    assert as_flags("try a lower `lr`", flags) == "try a lower --lr"
    assert as_flags("needs `likelihood=bernoulli`", flags) == "needs --likelihood bernoulli"
    assert as_flags("set `free_bits=0`", flags) == "set --set free_bits=0"
    assert as_flags("`steps` applies to diffusion models only", {"--num"}) == "steps applies to diffusion models only"
    assert as_flags("`grad_clip` must be at least 0", flags) == "--set grad_clip must be at least 0"


def test_a_run_interrupted_from_the_command_line_says_which_flags_resume_it(tmp_path, capsys, monkeypatch):
    from genlab.train import trainer

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_train_on_parts", interrupt)
    out = tmp_path / "run"
    assert main(["train", "ae", "--data", "digits", "--epochs", "1", "--quiet", "--out", str(out)]) == 2
    assert f"interrupted at step 0; continue it with --resume --out {out}" in capsys.readouterr().err


def test_a_runs_own_config_is_accepted_by_config(tmp_path, capsys):
    first = tmp_path / "first"
    assert main(["train", "ae", "--data", "digits", "--epochs", "1", "--hidden", "24", "--latent-dim", "3",
                 "--quiet", "--out", str(first)]) == 0
    second = tmp_path / "second"
    assert main(["train", "ae", "--data", "digits", "--config", str(first / "config.json"), "--quiet",
                 "--out", str(second)]) == 0
    a, b = (json.loads((d / "config.json").read_text()) for d in (first, second))
    assert a["model"] == b["model"] and a["train"] == b["train"]
    (tmp_path / "list.json").write_text("[1, 2]")
    assert main(["train", "ae", "--config", str(tmp_path / "list.json"), "--quiet", "--out", str(tmp_path / "x")]) == 2
    assert "must hold a mapping of settings" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--set", "channels=abc"], "--channels must be a list of integers, got 'abc'"),
    (["--set", "latent_dim=2.5"], "--latent-dim must be an integer, got 2.5"),
    (["--beta", "-1"], "--beta must be at least 0"),
    (["--set", "grad_clip=-1"], "--grad-clip must be at least 0"),   # a setting with a flag is named by its flag
    (["--set", "checkpoint_every=-5"], "--checkpoint-every must be at least 0"),
    (["--hidden", "-4"], "--hidden must be at least 1"),
    (["--set", "likelihood=poisson"], "unknown likelihood 'poisson'; choose one of: auto, bernoulli, gaussian"),
])
def test_bad_setting_values_end_in_one_line(tmp_path, capsys, argv, message):
    code = main(["train", "vae", "--data", "digits", "--epochs", "1", "--quiet", "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "r").exists()


def test_other_names_for_a_model_or_metric_get_what_was_meant(tmp_path, capsys):
    from genlab.registry import resolve_model_name

    assert resolve_model_name("ddpm") == "diffusion" and resolve_model_name("DCGAN") == "dcgan"
    out = tmp_path / "ae"
    assert main(["train", "autoencoder", "--data", "digits", "--epochs", "1", "--hidden", "16", "--quiet",
                 "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["name"] == "ae"
    assert main(["evaluate", str(out), "--metrics", "elbo,mse"]) == 0
    assert "sq_error_per_image" in capsys.readouterr().out
    assert main(["train", "vea", "--quiet"]) == 2
    assert "unknown model 'vea'; did you mean 'vae'?" in capsys.readouterr().err
    assert main(["evaluate", str(out), "--metrics", "fdi"]) == 2
    assert "unknown metric 'fdi'; did you mean 'fid'?" in capsys.readouterr().err


def test_sampling_fewer_than_one_image_is_refused(tmp_path, capsys):
    out = tmp_path / "vae"
    assert main(["train", "vae", "--data", "digits", "--epochs", "1", "--hidden", "16", "--quiet", "--out", str(out)]) == 0
    assert main(["sample", str(out), "-n", "0"]) == 2
    assert "--num (the number of samples) must be at least 1, got 0" in capsys.readouterr().err


def test_one_line_messages_survive_exceptions_without_a_message():
    from genlab.errors import first_line

    assert first_line(ValueError("")) == "ValueError"
    assert first_line(OSError("header too large\nmore detail")) == "header too large"
    assert len(first_line(RuntimeError("x" * 500))) == 120


# ------------------------------------------------------------ flags from settings, family commands
def trainers():
    """The module genlab.train (``genlab.train`` as an attribute is the function it exports)."""
    import importlib

    module = importlib.import_module("genlab.train")
    importlib.import_module("genlab.train.distributed")
    return module


@pytest.fixture
def toy_family():
    """A family registered from outside genlab: a config with a documented ``Literal`` field, a
    command of its own, a flag it adds to ``genlab sample`` and a dataset kind."""
    from dataclasses import dataclass
    from typing import Literal

    from genlab import registry
    from genlab.family import Command, Family
    from genlab.models.base import GenerativeModel, ModelConfig

    @dataclass
    class ToyConfig(ModelConfig):
        """Attributes (beyond :class:`ModelConfig`):
            toy_shape: the shape of every toy,
                ``round`` or ``square``.
            toy_size: undocumented elsewhere.
        """

        toy_shape: Literal["round", "square"] = "round"
        toy_size: int = 3

    class Toy(GenerativeModel):
        family = "toy"
        config_class = ToyConfig

    def hello(args):
        return [f"hello {args.who}"]

    record = Family(name="toy", model_class=Toy, presets={"toy-model": {}},
                    commands=(Command("toy-hello", "say hello", lambda p: p.add_argument("who"), hello),),
                    tool_arguments={"sample": lambda p: p.add_argument("--toy-flag", type=int, help="toys only")},
                    dataset_kinds={"toybox": lambda spec, split: None}, dataset_help="toybox:SPEC (toys in a box)")
    registry.register(record)
    yield ToyConfig
    registry.unregister("toy")


def test_a_new_setting_is_a_flag_with_its_choices_and_help(toy_family, capsys, monkeypatch):
    from genlab.cli import build_parser
    from genlab.config import from_dict
    from genlab.errors import GenlabError

    with pytest.raises(SystemExit):
        main(["train", "toy-model", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "settings of toy-model: --ema-decay" in help_text
    assert "--toy-shape {round,square} the shape of every toy, round or square. (default round)" in help_text
    assert "--toy-size N undocumented elsewhere." in help_text
    assert "--arch" not in help_text   # another model's setting
    # The training settings by their first sentence, with the choices of their Literal types.
    assert "--precision {fp32,bf16,fp16,auto} fp32, or bf16 / fp16 autocast --channels-last" in help_text
    assert "--lr-schedule {constant,cosine,linear-decay} the learning rate over the run --max-minutes" in help_text
    assert "--binarize, --no-binarize" in help_text and "--channels-last, --no-channels-last" in help_text
    # Without a model: no model's settings, and where to find them.
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--lr X peak learning rate of AdamW" in help_text
    assert "--toy-shape" not in help_text and "--likelihood" not in help_text
    assert help_text.endswith("Each model's own settings, with their defaults: genlab train MODEL --help.")
    with pytest.raises(SystemExit):
        main(["train", "vae", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--arch {dense,conv,resnet,unet,espcn}" in help_text and "--likelihood {auto,bernoulli,gaussian}" in help_text
    args = build_parser().parse_args(["train", "toy-model", "--toy-shape", "square", "--toy-size", "5",
                                      "--channels", "8,16", "--no-binarize", "--lr", "0.01"])
    assert (args.toy_shape, args.toy_size, args.channels, args.binarize, args.lr) == ("square", 5, (8, 16), False, 0.01)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "toy-model", "--toy-shape", "oval"])
    assert "invalid choice: 'oval'" in capsys.readouterr().err
    with pytest.raises(GenlabError, match="unknown toy_shape 'oval'; choose one of: round, square"):
        from_dict(toy_family, {"toy_shape": "oval"})
    # The settings are split into training and model settings, as the library takes them.
    called = {}
    monkeypatch.setattr(trainers(), "train", lambda model, data, **kwargs: called.update(kwargs, model=model))
    assert main(["train", "toy-model", "--toy-shape", "square", "--lr", "0.01", "--out", "x", "--quiet"]) == 0
    assert called["model"] == "toy-model" and called["model_settings"] == {"toy_shape": "square"}
    assert called["lr"] == 0.01 and "toy_shape" not in {k for k in called if k != "model_settings"}


def test_a_family_command_runs_and_its_datasets_are_listed(toy_family, capsys):
    assert main(["toy-hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    assert "toybox:SPEC (toys in a box)" in text and "volume:PATH" in text


def test_a_flag_a_family_adds_is_refused_for_runs_of_other_families(toy_family, tmp_path, capsys):
    import shutil
    from pathlib import Path

    run_dir = tmp_path / "ae"
    shutil.copytree(Path(__file__).parent / "fixtures" / "runs-4f1b47e" / "ae", run_dir)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    for argv, message in [(["sample", run_dir, "--size", 16], "--size applies to porous-gan, slicegan runs"),
                          (["sample", run_dir, "--toy-flag", 1], "--toy-flag applies to toy-model runs"),
                          (["translate", run_dir, image, "--direction", "b-to-a"],
                           "--direction applies to cyclegan runs")]:
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and message in err, err
        assert f"{run_dir} holds a run of ae" in err
    assert not list(run_dir.glob("*.png")) and not (tmp_path / "x-ae.png").exists()


def test_the_run_folder_is_named_once_with_or_without_nproc(tmp_path, monkeypatch):
    """The default folder of a cyclegan run names its second domain, in one process or in several."""
    from pathlib import Path

    from genlab.runs import run_name

    monkeypatch.chdir(tmp_path)
    launched, trained = [], []
    monkeypatch.setattr(trainers().distributed, "launch", lambda argv, nproc: launched.append(argv) or 0)
    monkeypatch.setattr(trainers(), "train", lambda model, data, out_dir=None, **kwargs: trained.append(out_dir))
    argv = ["train", "cyclegan", "--data", "digits28", "--domain-b", "digits-m", "--epochs", "1"]
    assert main([*argv, "--nproc", "2"]) == 0
    assert main(argv) == 0
    expected = str(Path("runs") / run_name("cyclegan", "digits28", {"domain_b": "digits-m"}))
    assert expected == str(Path("runs") / "cyclegan-digits28-digits-m")
    assert launched == [[*argv, "--out", expected]] and trained == [expected]
    assert "--nproc" not in launched[0]
    # The same setting given in a --config file names the folder the same way.
    (tmp_path / "c.json").write_text(json.dumps({"domain_b": "digits-m"}))
    assert main(["train", "cyclegan", "--data", "digits28", "--config", "c.json", "--nproc", "2"]) == 0
    assert launched[-1][-2:] == ["--out", expected]
