"""Damaged and hostile run folders: every command that reads a run ends in one line naming the
problem and exit code 2, never a traceback, whatever a file of the folder holds."""
import json
import random
import shutil

import pytest

from genlab.cli import main

COMMANDS = [["sample", "-n", "4"], ["reconstruct"], ["evaluate"], ["interpolate", "--from", "0", "--to", "1"],
            ["latent-map"], ["concept", "--attribute", "label=8 vs label=3"], ["probe", "--labels-per-class", "5"]]
RESUME = ["train", "vae", "--data", "digits", "--epochs", "3", "--resume", "--quiet"]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae"
    assert main(["train", "vae", "--data", "digits", "--epochs", "1", "--hidden", "16", "--latent-dim", "2",
                 "--quiet", "--out", str(out), "--set", "snapshot_every=-1"]) == 0
    return out


def damaged(run_folder, tmp_path, name, content: bytes):
    copy = tmp_path / "run"
    shutil.copytree(run_folder, copy)
    (copy / name).write_bytes(content)
    return copy


def ends_in_one_line(capsys, argv, codes=(2,)):
    code = main(argv)
    err = capsys.readouterr().err
    assert code in codes, (argv, code, err)
    if code:
        assert err.count("\n") == 1 and err.startswith("genlab: error: ") and "Traceback" not in err, err
    return err


def random_bytes(seed, n=300):
    return random.Random(seed).randbytes(n)


def random_json(seed):
    r = random.Random(seed)

    def value(depth=0):
        kinds = [lambda: None, lambda: r.random() * 10 ** r.randrange(-3, 13), lambda: "x" * r.randrange(4),
                 lambda: r.randrange(-5, 5), lambda: True,
                 lambda: [value(depth + 1) for _ in range(r.randrange(3))],
                 lambda: {r.choice(["model", "family", "train", "data", "step", "epoch"]): value(depth + 1)
                          for _ in range(3)}]
        return r.choice(kinds if depth < 3 else kinds[:5])()
    return json.dumps(value()).encode()


def broken_files(real: bytes, seed: int):
    """Empty, truncated, random bytes, and random JSON, for one file."""
    return [b"", real[: len(real) // 2], random_bytes(seed), random_json(seed), random_json(seed + 1)]


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_every_command_refuses_a_damaged_model_in_one_line(run_folder, tmp_path, capsys, name):
    real = (run_folder / name).read_bytes()
    for i, content in enumerate(broken_files(real, seed=len(name))):
        folder = damaged(run_folder, tmp_path / str(i), name, content)
        for command in COMMANDS:
            err = ends_in_one_line(capsys, [command[0], str(folder), *command[1:]])
            assert name in err or "config.json" in err, err
        ends_in_one_line(capsys, RESUME + ["--out", str(folder)])


@pytest.mark.parametrize("name", ["optimizer.safetensors", "rng.safetensors", "trainer_state.json"])
def test_resuming_refuses_a_damaged_checkpoint_in_one_line(run_folder, tmp_path, capsys, name):
    real = (run_folder / name).read_bytes()
    for i, content in enumerate(broken_files(real, seed=len(name))):
        folder = damaged(run_folder, tmp_path / str(i), name, content)
        err = ends_in_one_line(capsys, RESUME + ["--out", str(folder)])
        assert name in err or "optimizer or random state" in err, err


def test_a_config_with_wrong_shapes_or_types_is_named(run_folder, tmp_path, capsys):
    config = json.loads((run_folder / "config.json").read_text())
    cases = {
        "a list": [],
        "no model section": {k: v for k, v in config.items() if k != "model"},
        "a string for a number": {**config, "model": {**config["model"], "latent_dim": "two"}},
        "an unknown family": {**config, "family": "teleporter"},
        "a train list": {**config, "train": [1, 2]},
        "a data number": {**config, "data": 7},
        "negative width": {**config, "model": {**config["model"], "hidden": [-16]}},
    }
    for i, (case, value) in enumerate(cases.items()):
        folder = damaged(run_folder, tmp_path / str(i), "config.json", json.dumps(value).encode())
        for argv in (["sample", str(folder)], ["evaluate", str(folder)], RESUME + ["--out", str(folder)]):
            err = ends_in_one_line(capsys, argv)
            assert "config.json" in err, (case, err)


def test_a_config_that_asks_for_too_much_memory_is_refused_before_allocating(run_folder, tmp_path, capsys):
    config = json.loads((run_folder / "config.json").read_text())
    huge = {**config, "model": {**config["model"], "hidden": [10 ** 6, 10 ** 6]}}  # 4 TB of weights
    folder = damaged(run_folder, tmp_path, "config.json", json.dumps(huge).encode())
    err = ends_in_one_line(capsys, ["sample", str(folder)])
    assert "GiB of weights, more than the" in err
    wide = {**config, "model": {**config["model"], "hidden": [17]}}  # fits, but not the weights' shapes
    folder = damaged(run_folder, tmp_path / "wide", "config.json", json.dumps(wide).encode())
    assert "the config and the weights disagree" in ends_in_one_line(capsys, ["sample", str(folder)])


def test_random_mutations_of_a_config_never_end_in_a_traceback(run_folder, tmp_path, capsys):
    config = json.loads((run_folder / "config.json").read_text())
    r = random.Random(0)
    junk = [None, -1, 0, 1.5, 10 ** 9, "", "x", [], [3], {}, True]
    for i in range(40):
        mutated = json.loads(json.dumps(config))
        section = r.choice(["model", "train", "data"])
        key = r.choice(sorted(mutated[section]))
        mutated[section][key] = r.choice(junk)
        folder = damaged(run_folder, tmp_path / str(i), "config.json", json.dumps(mutated).encode())
        for argv in (["sample", str(folder), "-n", "2"], RESUME + ["--out", str(folder)]):
            ends_in_one_line(capsys, argv, codes=(0, 2))


def test_metrics_damaged_by_a_kill_are_dropped_on_resume(run_folder, tmp_path, capsys):
    folder = damaged(run_folder, tmp_path, "metrics.jsonl", (run_folder / "metrics.jsonl").read_bytes() + b'{"epo')
    assert main(RESUME + ["--out", str(folder), "--epochs", "2"]) == 0
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2]
