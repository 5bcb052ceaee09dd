"""``genlab --help`` in a blink: the commands grouped by what a user is doing, without loading
torch or any model.

The core's commands and their one-line help are the table :data:`COMMANDS` (the parser takes its
help from it too). The families' own commands (their records' ``commands``) are read from the
source of the families that the registry lists, not imported: a family's package imports its
models, and so torch (where the registry is loaded already, the records are read instead, families
registered at run time included).
"""
from __future__ import annotations

import ast
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

#: the core's commands, by what a user is doing: {group: {command: one line of help}}
COMMANDS: dict[str, dict[str, str]] = {
    "start here": {
        "demo": "train a small model of each kind on digits and write an HTML report",
        "datasets": "list the datasets, their shapes and whether they are here",
        "explain": "figures that explain a building block",
    },
    "train": {
        "train": "train a model into a run folder (genlab train MODEL --data DATA)",
    },
    "look at a trained run": {
        "sample": "draw samples from a trained model (PNG grid)",
        "reconstruct": "test images above their reconstructions (PNG grid)",
        "evaluate": "the model's measures beside their baselines: squared error, ELBO and bits/dim, FID of samples, "
                    "a family's own (--metrics fid,kid,pr,dc,nll for more)",
        "interpolate": "decode a path between two test images, seeds or saved codes (PNG strip, GIF)",
        "latent-map": "test codes (or, without an encoder, draws from the prior coloured by the class a classifier "
                      "sees in their images) as a 2-D scatter; a manifold grid for 2-D codes",
        "encode": "latent codes of a split to .npz (arrays z, labels)",
        "concept": "a concept vector (mean code with minus without an attribute), applied to images",
        "probe": "linear classifiers on codes vs pixels vs PCA, by label budget",
    },
    "use a trained run": {
        "translate": "apply a run that maps images to images to image files (PNG)",
        "serve": "an HTTP API and a latent explorer page for a trained run",
        "export": "export a run's decoder (codes to images) or image-to-image network as one TorchScript or ONNX "
                  "file, checked against the model",
    },
}

#: every core command's help, by name
HELP = {name: text for group in COMMANDS.values() for name, text in group.items()}


def family_commands() -> list[tuple[str, str]]:
    """(name, help) of the commands of the families the registry lists, read from their records'
    source (``Command("name", "help", ...)`` in each family's ``__init__.py``); when the registry
    is loaded already (a family registered from Python), its records'."""
    import sys

    if "genlab.registry" in sys.modules:
        return [(c.name, c.help) for f in sys.modules["genlab.registry"].FAMILIES for c in f.commands]
    here = Path(__file__).parent
    registry = ast.parse((here / "registry.py").read_text())
    listed = []
    for node in ast.walk(registry):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "FAMILIES" and node.value:
            listed = [e.value.id for e in node.value.elts if isinstance(e, ast.Attribute)]
    found = []
    for package in listed:
        source = here / "families" / package / "__init__.py"
        for node in ast.walk(ast.parse(source.read_text())) if source.is_file() else ():
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Command" and len(node.args) >= 2 \
                    and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args[:2]):
                found.append((node.args[0].value, node.args[1].value))
    return found


def top_help() -> str:
    """The text of ``genlab --help``."""
    groups = {**COMMANDS, "the families' own commands": dict(family_commands())}
    width = max(len(name) for group in groups.values() for name in group) + 2
    columns = max(60, min(100, shutil.get_terminal_size().columns - 1))
    lines = ["usage: genlab COMMAND [options]      (genlab COMMAND --help: its options)", "",
             "Deep generative models of images: train, look at, use.", ""]
    for title, commands in groups.items():
        if commands:
            lines.append(f"{title}:")
            lines += [textwrap.fill(text, columns, initial_indent=f"  {name:<{width}}",
                                    subsequent_indent=" " * (width + 2)) for name, text in commands.items()]
            lines.append("")
    lines.append("Models: genlab train --help lists them; genlab train MODEL --help, a model's settings. "
                 "Docs: README.md and docs/.")
    return "\n".join(lines)


def cached_page(argv: list[str], render: Callable[[], str]) -> str:
    """The help page of ``argv`` (``genlab train [MODEL] --help``), from genlab's cache when this
    installation wrote it before: ``render`` (which builds the full parser, and so imports torch
    and every family) runs once per version of the source, page and terminal width. The key holds
    the size and time of every source file of the package, so an edit or an upgrade renders anew.
    Where the registry is loaded already (a family may have been registered from Python), the
    page is rendered afresh: torch is in memory then, and the cache cannot know that family."""
    import hashlib
    import sys

    from .files import cache_dir, write_atomic

    if "genlab.registry" in sys.modules:
        return render()
    here = Path(__file__).parent
    stamp = hashlib.sha256(" ".join(argv).encode())
    stamp.update(str(shutil.get_terminal_size().columns).encode())
    for path in sorted(here.rglob("*.py")):
        info = path.stat()
        stamp.update(f"{path.relative_to(here)} {info.st_size} {info.st_mtime_ns}\n".encode())
    cached = cache_dir() / "help" / f"{stamp.hexdigest()[:32]}.txt"
    try:
        return cached.read_text()
    except OSError:
        pass
    page = render()
    try:
        write_atomic(cached, lambda f: f.write(page.encode()))
    except OSError:   # a read-only cache: the page is still right, only not kept
        pass
    return page
