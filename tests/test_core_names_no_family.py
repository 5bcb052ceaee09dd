"""The core never names a family: outside genlab/families/, the registry and docstrings, no code
or comment of train/, data/, metrics/, latent/, viz/, serve/ or cli.py names a family or one of its
models. A tool learns what a model can do from its declared capabilities and its family's record."""
import io
import re
import tokenize
from pathlib import Path

import genlab
from genlab.registry import FAMILIES

SRC = Path(genlab.__file__).parent
CORE = ["train", "data", "metrics", "latent", "viz", "serve", "cli.py"]
# Words that are family or model names but also ordinary words of the core's own vocabulary.
ORDINARY = {"denoise", "compress", "diffusion", "pca", "linear", "dm", "sr", "denoising", "autoencoder",
            "gan", "codec"}


def names() -> set[str]:
    words = set()
    for family in FAMILIES:
        words |= {family.name, *family.former_names, *family.presets, *family.aliases}
        words |= {cls.__name__ for cls in family.classes()}
    return {w for w in words if w.lower() not in ORDINARY}


def code_without_docstrings(path: Path) -> str:
    """The module's code and comments, with every string literal blanked (docstrings, help text
    and messages may speak of families; code may not branch on them)."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        out.append(tok.string if tok.type != tokenize.STRING else '""')
    return " ".join(out)


def core_files() -> list[Path]:
    files = []
    for entry in CORE:
        path = SRC / entry
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def offenders(files, words, root: Path = SRC) -> dict[str, list[str]]:
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, sorted(words, key=len, reverse=True)))
                         + r")(?![\w-])", re.I)
    found = {}
    for path in files:
        hits = sorted(set(m[1] for m in pattern.finditer(code_without_docstrings(path))))
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def test_the_core_names_no_family():
    assert offenders(core_files(), names()) == {}


def test_the_check_finds_a_family_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""CycleGAN in a docstring is fine."""\nif model.name == "cyclegan":  # pix2pix too\n'
                   '    model = CycleGAN()\n')
    assert offenders([bad], names(), tmp_path) == {"bad.py": ["CycleGAN", "pix2pix"]}
