"""Files that belong to the user are never replaced unasked; paths the OS refuses and inputs out of
bounds end in one line and exit 2, checked before any work. On the committed fixture run folders,
so nothing is trained."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab.cli import main
from genlab.files import save_weights_atomic, write_text_atomic

FIXTURES = Path(__file__).parent / "fixtures" / "runs-4f1b47e"


@pytest.fixture
def runs(tmp_path):
    """A copy of a fixture run folder in tmp_path, by name."""
    def copy(name):
        target = tmp_path / "runs" / name
        if not target.exists():
            shutil.copytree(FIXTURES / name, target)
        return target
    return copy


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err, *parts):
    assert err.startswith("genlab: error: ") and err.count("\n") == 1, err
    for part in parts:
        assert str(part) in err, err


def fill(text: str, where: dict[str, str]) -> str:
    """``text`` with each placeholder of ``where`` (``{tmp}``, ``{vae}``...) replaced by its path."""
    for key, value in where.items():
        text = text.replace(key, value)
    return text


def png(path, value=90):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)
    return path


# ------------------------------------------------------------------ files that belong to the user
def test_write_atomic_gives_the_permissions_of_a_plain_open(tmp_path):
    old = os.umask(0o027)
    try:
        path = save_weights_atomic({"w": __import__("torch").zeros(2)}, tmp_path / "w.safetensors")
        assert path.stat().st_mode & 0o777 == 0o640
        os.umask(0o002)
        assert write_text_atomic(tmp_path / "c.json", "{}").stat().st_mode & 0o777 == 0o664
        (tmp_path / "mine.txt").write_text("x")
        os.chmod(tmp_path / "mine.txt", 0o600)
        assert write_text_atomic(tmp_path / "mine.txt", "y").stat().st_mode & 0o777 == 0o600  # kept, as open() does
    finally:
        os.umask(old)


def test_decompress_never_replaces_the_original_image(runs, tmp_path, capsys):
    codec = runs("compress")
    original = png(tmp_path / "a.png")
    before = original.read_bytes()
    assert run(capsys, "compress", codec, original)[0] == 0
    code, _, err = run(capsys, "decompress", tmp_path / "a.glc", "--run", codec)
    assert code == 2 and original.read_bytes() == before
    one_line(err, original, "already exists", "--out", "--overwrite")
    code, out, _ = run(capsys, "decompress", tmp_path / "a.glc", "--run", codec, "--out", tmp_path / "back")
    assert code == 0 and out.split() == [str(tmp_path / "back" / "a.png")]
    code, _, err = run(capsys, "compress", codec, original)   # a.glc is there now
    one_line(err, tmp_path / "a.glc", "--overwrite")
    assert run(capsys, "compress", codec, original, "--overwrite")[0] == 0
    assert run(capsys, "decompress", tmp_path / "a.glc", "--run", codec, "--overwrite")[0] == 0
    assert original.read_bytes() != before or Image.open(original).size == (8, 8)


def test_translate_never_replaces_a_file(runs, tmp_path, capsys):
    denoise = runs("denoise")
    image = png(tmp_path / "a.png")
    (tmp_path / "a-denoise.png").write_bytes(b"mine")
    code, _, err = run(capsys, "translate", denoise, image)
    one_line(err, tmp_path / "a-denoise.png", "already exists", "--overwrite")
    assert code == 2 and (tmp_path / "a-denoise.png").read_bytes() == b"mine"
    assert run(capsys, "translate", denoise, image, "--overwrite")[0] == 0
    assert Image.open(tmp_path / "a-denoise.png").size == (8, 8)


def test_a_file_declaring_a_huge_image_is_refused_before_it_is_decoded(runs, tmp_path, capsys):
    """A 150-byte PNG whose header says 20000 x 20000: one line, the same limit as the server's."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    for command in (["translate", runs("denoise"), huge], ["compress", runs("compress"), huge]):
        code, _, err = run(capsys, *command)
        assert code == 2
        one_line(err, huge, "over the limit", "pixels")


@pytest.mark.parametrize("command", ["compress", "translate", "decompress"])
def test_two_inputs_of_one_name_into_one_folder_are_refused_before_writing(command, runs, tmp_path, capsys):
    run_dir = runs("denoise" if command == "translate" else "compress")
    first, second = png(tmp_path / "x" / "a.png"), png(tmp_path / "y" / "a.png", 200)
    inputs = [first, second]
    if command == "decompress":
        assert run(capsys, "compress", run_dir, first, second)[0] == 0
        inputs = [first.with_suffix(".glc"), second.with_suffix(".glc")]
    def argv(files):
        return [command, run_dir, *files] if command != "decompress" else [command, *files, "--run", run_dir]
    code, _, err = run(capsys, *argv(inputs), "--out", tmp_path / "out")
    assert code == 2 and not (tmp_path / "out").exists()
    one_line(err, inputs[0], inputs[1], "would both be written to")
    code, _, err = run(capsys, *argv([inputs[0], inputs[0]]), "--out", tmp_path / "out")   # one file twice
    assert code == 2 and not (tmp_path / "out").exists()
    one_line(err, inputs[0], "given twice")


def test_encode_writes_exactly_the_path_given(runs, tmp_path, capsys):
    vae = runs("conv-vae")
    code, _, err = run(capsys, "encode", vae, "--out", tmp_path / "w.safetensors")
    one_line(err, "--out", ".npz", "w.safetensors")
    assert code == 2 and not list(tmp_path.glob("w.*"))
    code, out, _ = run(capsys, "encode", vae, "--out", tmp_path / "w.npz")
    assert code == 0 and out.strip() == str(tmp_path / "w.npz")
    assert np.load(tmp_path / "w.npz")["z"].shape[0] > 0 and not list(tmp_path.glob(".*tmp"))


# ------------------------------------------------------------------ paths the OS refuses
@pytest.mark.parametrize("argv, parts", [
    (["sample", "{dcgan}", "--out", "{tmp}"], ["is a folder", "--out"]),
    (["sample", "{dcgan}", "--out", "{tmp}/samples.txt"], ["--out", "samples.txt", ".png"]),
    (["reconstruct", "{vae}", "--out", "{tmp}/r.txt"], ["--out", "r.txt"]),
    (["evaluate", "{vae}", "--out", "{vae}/config.json"], ["--out", "config.json"]),
    (["train", "vae", "--config", "{tmp}"], ["is a folder"]),
    (["sample", "{dcgan}", "--out", "{tmp}/" + "x" * 300 + ".png"], ["too long"]),
    (["sample", "{dcgan}", "--out", "{tmp}/afile/s.png"], ["afile", "a folder is needed"]),
    (["sample", "{dcgan}", "--out", "/proc/genlab-test/s.png"], ["/proc/genlab-test"]),
    (["interpolate", "{dcgan}", "--from", "1", "--to", "2", "--out", "{tmp}/afile"], ["afile"]),
])
def test_paths_the_system_refuses_are_one_line(argv, parts, runs, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    where = {"{tmp}": str(tmp_path), "{dcgan}": str(runs("dcgan")), "{vae}": str(runs("conv-vae"))}
    code, _, err = run(capsys, *(fill(a, where) for a in argv))
    assert code == 2, err
    one_line(err, *(fill(p, where) for p in parts))
    assert (runs("conv-vae") / "config.json").read_bytes() == (FIXTURES / "conv-vae" / "config.json").read_bytes()


# ------------------------------------------------------------------ bounded inputs
@pytest.mark.parametrize("argv, parts", [
    (["reconstruct", "{vae}", "-n", "0"], ["--num", "at least 1"]),
    (["latent-map", "{vae}", "--limit", "0"], ["--limit", "at least 1"]),
    (["evaluate", "{vae}", "--mc-samples", "-1"], ["--mc-samples", "-1"]),
    (["evaluate", "{vae}", "--mc-samples", "0"], ["--mc-samples", "got 0"]),
    (["evaluate", "{vae}", "--metrics", "fid", "--num-samples", "2"], ["--num-samples", "got 2"]),
    (["evaluate", "{vae}", "--num-samples", "0"], ["--num-samples", "got 0"]),
    (["evaluate", "{vae}", "--seed", str(2 ** 64)], ["--seed", "below 2**64"]),
    (["interpolate", "{vae}", "--from", "0", "--to", "1", "--steps", "100000000"], ["--steps", "2..1000"]),
    (["interpolate", "{vae}", "--from", "0", "--to", "{tmp}/nan.npy"], ["nan.npy", "not finite"]),
    (["interpolate", "{dcgan}", "--from", "1", "--to", "{tmp}/nan.npy"], ["nan.npy", "not finite"]),
    (["interpolate", "{dcgan}", "--from", str(2 ** 64), "--to", "1"], ["seed", "below 2**64"]),
    (["sample", "{dcgan}", "--seed", str(2 ** 64)], ["--seed", str(2 ** 64)]),
    (["sample", "{dcgan}", "--seed", "-1"], ["--seed", "-1"]),
    (["sample", "{cdiffusion}", "--guidance", "nan"], ["--guidance", "finite"]),
    (["sample", "{cdiffusion}", "--eta", "inf"], ["--eta", "finite"]),
    (["concept", "{vae}", "--attribute", "label=8", "--strengths", "1,nan"], ["--strengths", "finite"]),
    (["latent-map", "{dcgan}", "--seed", "-5"], ["--seed", "-5"]),
    (["sample", "{vae}", "-n", "100000000"], ["--num", "over the limit", "draw at most 1,048,576"]),
    (["sample", "{porous}", "-n", "1000000000"], ["--num", "GiB of memory"]),
    (["sample", "{porous}", "-n", "0"], ["--num", "got 0"]),
    (["sample", "{porous}", "--seed", str(2 ** 64)], ["--seed", "below 2**64"]),
    (["evaluate", "{porous}", "--seed", str(2 ** 64)], ["--seed", "below 2**64"]),
    (["evaluate", "{porous}", "--num-samples", "100000000"], ["--num-samples", "GiB of memory"]),
    (["interpolate", "{porous}", "--from", "0", "--to", str(2 ** 64)], ["--to", "below 2**64"]),
    (["interpolate", "{porous}", "--from", "0", "--to", "1", "--steps", "100000000"], ["--steps", "2..1000"]),
    (["make-volume", "gaussian-field", "--size", "100000", "--out", "{tmp}/v.npy"], ["--size", "GiB of memory"]),
    (["make-volume", "overlapping-spheres", "--size", "16", "--radius", "0.0001", "--out", "{tmp}/v.npy"],
     ["--radius", "GiB of memory"]),
    (["make-volume", "gaussian-field", "--size", "8", "--seed", "-1", "--out", "{tmp}/v.npy"], ["--seed", "-1"]),
    (["experiment", "elbo-ablation", "--train-size", "0", "--out", "{tmp}/ablation"], ["--train-size", "at least 1"]),
    (["experiment", "elbo-ablation", "--seed", str(2 ** 64), "--out", "{tmp}/ablation"], ["--seed", "below 2**64"]),
    (["explain", "transposed-conv", "--seed", str(2 ** 64), "--out", "{tmp}/explain"], ["--seed", "below 2**64"]),
    (["train", "vae", "--set", "latent_dim=2000000000", "--out", "{tmp}/huge"],
     ["GiB of weights", "--latent-dim 2000000000"]),
    (["train", "vae", "--device", "mps", "--out", "{tmp}/mps"], ["--device", "not available"]),
    (["train", "vae", "--device", "meta", "--out", "{tmp}/meta"], ["--device", "not available"]),
    (["train", "vae", "--seed", str(2 ** 64), "--out", "{tmp}/seed"], ["--seed", "below 2**64"]),
])
def test_out_of_bounds_inputs_are_one_line(argv, parts, runs, tmp_path, capsys):
    width = {"{vae}": "conv-vae", "{dcgan}": "dcgan"}
    named = {"{dcgan}": "dcgan", "{vae}": "conv-vae", "{cdiffusion}": "cdiffusion", "{porous}": "porous-gan"}
    where = {"{tmp}": str(tmp_path), **{key: str(runs(name)) for key, name in named.items()
                                        if any(key in a for a in argv + parts)}}
    if any("nan.npy" in a for a in argv):
        from genlab.registry import load_model

        d = load_model(runs(width[argv[1]])).config.latent_dim
        np.save(tmp_path / "nan.npy", np.full(d, np.nan, np.float32))
    code, _, err = run(capsys, *(fill(a, where) for a in argv))
    assert code == 2, err
    one_line(err, *parts)
    assert not (tmp_path / "runs" / "conv-vae" / "evaluation-test.json").exists()
    assert not any((tmp_path / name).exists() for name in ("v.npy", "ablation", "explain", "huge"))


def test_a_cube_edge_too_large_for_the_volume_is_fixed_in_the_data_name(tmp_path, capsys):
    """The edge of the cubes is part of `--data volume:PATH,edge=E`, not a setting of its own."""
    np.save(tmp_path / "rock.npy", np.random.default_rng(0).random((12, 12, 12)) < 0.3)
    code, _, err = run(capsys, "train", "porous-gan", "--data", f"volume:{tmp_path / 'rock.npy'},edge=64",
                       "--out", tmp_path / "run")
    assert code == 2 and not (tmp_path / "run").exists()
    one_line(err, "cube edge 64", "at most 12", "`volume:PATH,edge=8`")
    assert "--set" not in err


def test_a_codec_file_whose_header_declares_an_image_its_code_cannot_hold_is_refused(runs, tmp_path, capsys):
    """The image size in a .glc header is checked against the bounds and the coded length
    before anything of that size is allocated (1024x1024 in a few bytes, 0x0, 65535x65535), even
    in a forged file whose checksum matches."""
    import struct
    import zlib

    codec = runs("compress")
    assert run(capsys, "compress", codec, png(tmp_path / "a.png"))[0] == 0
    data = (tmp_path / "a.glc").read_bytes()
    for (h, w), parts in {(1024, 1024): ["1024x1024", "at least", "damaged"], (0, 0): ["0x0", "smaller than"],
                          (65535, 65535): ["65535x65535", "over the limit"], (2, 8): ["8x2", "smaller than"]}.items():
        forged = tmp_path / f"forged-{h}.glc"
        fields = data[:12] + struct.pack("<HH", h, w)
        forged.write_bytes(fields + struct.pack("<I", zlib.crc32(data[20:], zlib.crc32(fields))) + data[20:])
        code, _, err = run(capsys, "decompress", forged, "--run", codec, "--out", tmp_path / "out")
        assert code == 2 and not (tmp_path / "out").exists()
        one_line(err, forged, *parts)


def test_the_codec_files_are_the_same_bytes_as_those_coded_symbol_by_symbol(runs):
    """Coding channel by channel (one table per channel) writes the very words of coding with a
    table per symbol: GLC3 with the saved integer tables, after a checksum; the files of the formats
    before, coded with the densities' floating-point tables (GLC2 after a checksum, GLC1 right after
    the image size), still decode."""
    import zlib

    import constriction
    import torch

    from genlab.families.codec.bitstream import (FIELDS, FLOAT_MAGIC, MAGIC, OLD_MAGIC, decode_file, encode_symbols,
                                                 fingerprint)
    from genlab.families.codec.model import CODING_PRECISION
    from genlab.registry import load_model

    model = load_model(runs("compress"))   # saved before the integer tables: they are made on first use
    r = model.config.symbol_range
    symbols = torch.from_numpy(np.random.default_rng(0).integers(-r, r + 1, size=model.code_shape(16, 12)))

    def words_of(table: np.ndarray) -> bytes:
        per_symbol = np.repeat(table.astype(np.float32), symbols[0].numel(), axis=0)
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode((symbols.flatten() + r).numpy().astype(np.int32),
                       constriction.stream.model.Categorical(perfect=False), per_symbol)
        return encoder.get_compressed().astype("<u4").tobytes()

    words = words_of(model.coding_frequencies().numpy() / 2 ** CODING_PRECISION)
    fields = FIELDS.pack(MAGIC, fingerprint(model), 16, 12)
    assert encode_symbols(model, symbols, (16, 12)) == fields + zlib.crc32(fields + words).to_bytes(4, "little") + words
    float_words = words_of(model.probability_table().numpy())
    float_fields = FIELDS.pack(FLOAT_MAGIC, fingerprint(model), 16, 12)
    with torch.no_grad():   # the old files decode to the image of their symbols
        expected = model.synthesise(symbols[None], (16, 12))
        for old in (float_fields + zlib.crc32(float_fields + float_words).to_bytes(4, "little") + float_words,
                    FIELDS.pack(OLD_MAGIC, fingerprint(model), 16, 12) + float_words):
            assert torch.equal(decode_file(model, old), expected)


def test_a_run_records_its_data_file_absolutely_and_finds_it_from_any_folder(tmp_path, monkeypatch):
    from genlab.data.folders import split_index
    from genlab.train import load_run

    data = tmp_path / "data"
    data.mkdir()
    images = (np.random.default_rng(0).random((40, 8, 8)) * 255).astype(np.uint8)
    np.savez(data / "d.npz", x=images)
    monkeypatch.chdir(data)
    assert main(["train", "vae", "--data", "npz:d.npz", "--epochs", "1", "--hidden", "16", "--latent-dim", "2",
                 "--batch-size", "36", "--snapshot-every", "-1", "--quiet"]) == 0
    run_dir = data / "runs" / "vae-d"  # the default name still comes from the file's stem
    assert load_run(run_dir).dataset_name == f"npz:{data / 'd.npz'}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    np.savez(elsewhere / "d.npz", x=255 - images)  # a file of the same name where evaluate runs
    monkeypatch.chdir(elsewhere)
    test = load_run(run_dir).dataset("test")
    assert test.name == f"npz:{data / 'd.npz'}"
    assert np.array_equal(test.images.numpy().reshape(-1, 8, 8), images[split_index(40, "test")])
