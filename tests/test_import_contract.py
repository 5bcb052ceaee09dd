"""The import contract: imports point one way, from the edges (CLI, families) to the core.

Every ``import`` and ``from ... import`` of every module under ``src/genlab`` is read with
:mod:`ast` (relative imports resolved against the module's package; imports inside functions
count, imports only for type checkers (``if TYPE_CHECKING:``) do not), and checked against the
rules of :data:`RULES`:

- the core (everything but ``genlab/families/**`` and ``genlab/registry.py``) imports no family:
  it reads the records through the registry;
- a family imports no other family, but for the edges of :data:`FAMILY_EDGES` (each with its reason);
- ``genlab.data`` imports nothing of what uses data (metrics, training, serving, latent tools,
  pictures);
- ``genlab.nn`` (shared layers) imports nothing of genlab but errors, config and itself;
- ``genlab.models`` (the surface every model shares) imports no tool (train, serve, latent,
  metrics, viz, the CLI, commands);
- ``genlab.viz`` (pictures) imports no metrics; ``genlab.serve`` imports no ``genlab.commands``
  (the CLI's work; what both need lives in the core);
- nothing imports the CLI edge (``genlab.cli``), but ``genlab/__main__.py``;
- nothing inside genlab imports the package ``genlab`` itself (its ``__init__`` imports the
  whole library: a module that imports it back closes a circle);
- no circle of imports inside one package of the core (``genlab.data``'s registry and its
  loaders once were one); how a family arranges its own package is its own affair.

The checker is a plain function (:func:`contract_violations`), run on genlab and on a small
synthetic package, to show it fails on a wrong-way import.
"""
from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import genlab

SRC = Path(genlab.__file__).parent

#: family -> family imports that are part of the design, with the reason
FAMILY_EDGES = {
    ("porous", "gan"): "the 3-D GAN is the gan family's GAN class with 3-D networks (PorousGAN(GAN))",
}


# --------------------------------------------------------------------- reading imports
@dataclass(frozen=True)
class Import:
    importer: str   # the importing module, e.g. genlab.train.trainer
    target: str     # the imported module, e.g. genlab.registry
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.target} (line {self.line})"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """``{dotted name: file}`` of every module of the package at ``root`` (its ``__init__`` as
    the package's own name)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join([package, *parts])] = path
    return names


def _under_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _under_type_checking(node):
            children = list(node.orelse)
        stack.extend(children)


def imports(root: Path, package: str) -> list[Import]:
    """Every import of a module of ``package`` (at ``root``) by a module of it, each resolved to
    the module it loads: ``from .x import y`` is ``PKG.x.y`` where that is a module, else ``PKG.x``."""
    modules = module_names(root, package)
    found = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]   # what `from . import` starts at
        for node in _import_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = here.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    start = ".".join(base + ([node.module] if node.module else []))
                else:
                    start = node.module or ""
                targets = [f"{start}.{a.name}" if f"{start}.{a.name}" in modules else start for a in node.names]
            for target in dict.fromkeys(targets):
                while target not in modules and "." in target:   # `import genlab.x.y` loads genlab.x.y
                    target = target.rpartition(".")[0]
                if target in modules and target != name:
                    found.append(Import(name, target, node.lineno))
    return found


# --------------------------------------------------------------------- the rules
def within(module: str, *prefixes: str) -> bool:
    """``module`` is one of ``prefixes`` or inside one of them."""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def family_of(module: str, package: str) -> str | None:
    """The family a module belongs to (``PKG.families.NAME...``), or None."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == [package, "families"] else None


@dataclass(frozen=True)
class Rule:
    name: str
    broken_by: Callable[[Import, str], bool]


def _core_imports_a_family(i: Import, pkg: str) -> bool:
    core = not within(i.importer, f"{pkg}.families", f"{pkg}.registry")
    return core and within(i.target, f"{pkg}.families") and i.target != f"{pkg}.families"


def _family_imports_another(i: Import, pkg: str) -> bool:
    a, b = family_of(i.importer, pkg), family_of(i.target, pkg)
    return a is not None and b is not None and a != b and (a, b) not in FAMILY_EDGES


def _layer(importer: str, *forbidden: str, allowed: tuple[str, ...] | None = None):
    """A rule: modules under ``importer`` import none of ``forbidden`` (or, with ``allowed``,
    nothing of the package but ``allowed`` and themselves)."""
    def broken_by(i: Import, pkg: str) -> bool:
        if not within(i.importer, f"{pkg}.{importer}") or within(i.target, f"{pkg}.{importer}"):
            return False
        if allowed is not None:
            return not within(i.target, *(f"{pkg}.{a}" for a in allowed))
        return within(i.target, *(f"{pkg}.{f}" for f in forbidden))
    return broken_by


RULES = [
    Rule("the core imports no family (it reads the records through the registry)", _core_imports_a_family),
    Rule("a family imports no other family (but the declared edges)", _family_imports_another),
    Rule("data imports nothing of what uses data", _layer("data", "metrics", "train", "serve", "latent", "viz")),
    Rule("nothing imports the CLI edge", lambda i, pkg: within(i.target, f"{pkg}.cli")
         and i.importer != f"{pkg}.__main__"),
    Rule("nn imports nothing of genlab but errors, config and itself", _layer("nn", allowed=("errors", "config"))),
    Rule("models imports no tool", _layer("models", "train", "serve", "latent", "metrics", "viz", "cli", "commands")),
    Rule("viz imports no metrics", _layer("viz", "metrics")),
    Rule("serve imports no commands (what both need lives in the core)", _layer("serve", "commands")),
    Rule("nothing inside the package imports the package itself", lambda i, pkg: i.target == pkg),
]


def circles(found: list[Import], package: str) -> list[list[str]]:
    """Circles of imports among the modules of one sub-package of the core (``PKG.data.*``), each once."""
    graph: dict[str, set[str]] = {}
    for i in found:
        home = i.importer.split(".")[:2]
        if home == i.target.split(".")[:2] and len(home) == 2 and home[1] != "families":
            graph.setdefault(i.importer, set()).add(i.target)
    out, seen = [], set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                key = frozenset(path)
                if key not in seen:
                    seen.add(key)
                    out.append(path + [nxt])
            elif nxt not in path and nxt > path[0]:   # each circle from its smallest module
                walk(nxt, path + [nxt])
    for start in sorted(graph):
        walk(start, [start])
    return out


def contract_violations(root: Path, package: str) -> list[str]:
    """One line per import that breaks a rule, and per circle of imports inside a sub-package."""
    found = imports(root, package)
    lines = [f"{rule.name}: {i}" for rule in RULES for i in found if rule.broken_by(i, package)]
    lines += ["a circle of imports: " + " -> ".join(c) for c in circles(found, package)]
    return lines


# --------------------------------------------------------------------- the tests
def test_genlab_keeps_the_import_contract():
    assert contract_violations(SRC, "genlab") == []


def test_the_reader_resolves_relative_imports_and_skips_type_checking(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from .train import trainer\n",
        "train/__init__.py": "",
        "train/trainer.py": "from .. import data\nfrom ..data.base import X\nfrom . import other\n"
                            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..viz import grid\n"
                            "def f():\n    import pkg.viz.grid\n",
        "train/other.py": "",
        "data/__init__.py": "", "data/base.py": "X = 1\n",
        "viz/__init__.py": "", "viz/grid.py": "",
    })
    found = {(i.importer, i.target) for i in imports(root, "pkg")}
    assert found == {("pkg", "pkg.train.trainer"), ("pkg.train.trainer", "pkg.data"),
                     ("pkg.train.trainer", "pkg.data.base"), ("pkg.train.trainer", "pkg.train.other"),
                     ("pkg.train.trainer", "pkg.viz.grid")}


def test_the_contract_fails_on_wrong_way_imports(tmp_path):
    """A small package that breaks each rule once: the check names every wrong import."""
    root = _package(tmp_path, {
        "__init__.py": "__version__ = '1'\n",
        "__main__.py": "from .cli import main\n",
        "cli.py": "",
        "registry.py": "from .families import vae, gan\n",
        "errors.py": "", "config.py": "",
        "families/__init__.py": "",
        "families/vae/__init__.py": "from ..gan.model import GAN\n",             # family -> family
        "families/gan/__init__.py": "", "families/gan/model.py": "GAN = 1\n",
        "families/porous/__init__.py": "from ..gan.model import GAN\n",          # declared: fine
        "train/__init__.py": "", "train/trainer.py": "from .. import __version__\n"
                                                     "from ..families.vae import x\n",
        "data/__init__.py": "", "data/registry.py": "def f():\n    from . import loaders\n",
        "data/loaders.py": "from .registry import f\nfrom ..metrics import fid\n",
        "metrics/__init__.py": "fid = 1\n",
        "nn/__init__.py": "from ..errors import E\nfrom ..models import base\n",
        "models/__init__.py": "", "models/base.py": "from ..train import trainer\n",
        "viz/__init__.py": "from ..metrics import fid\n",
        "serve/__init__.py": "from ..commands import translate\nfrom ..cli import main\n",
        "commands/__init__.py": "", "commands/translate.py": "",
    })
    assert sorted(contract_violations(root, "pkg")) == sorted([
        "the core imports no family (it reads the records through the registry): "
        "pkg.train.trainer -> pkg.families.vae (line 2)",
        "a family imports no other family (but the declared edges): pkg.families.vae -> pkg.families.gan.model (line 1)",
        "data imports nothing of what uses data: pkg.data.loaders -> pkg.metrics (line 2)",
        "nothing imports the CLI edge: pkg.serve -> pkg.cli (line 2)",
        "nn imports nothing of genlab but errors, config and itself: pkg.nn -> pkg.models.base (line 2)",
        "models imports no tool: pkg.models.base -> pkg.train.trainer (line 1)",
        "viz imports no metrics: pkg.viz -> pkg.metrics (line 1)",
        "serve imports no commands (what both need lives in the core): pkg.serve -> pkg.commands.translate (line 1)",
        "nothing inside the package imports the package itself: pkg.train.trainer -> pkg (line 1)",
        "a circle of imports: pkg.data.loaders -> pkg.data.registry -> pkg.data.loaders",
    ])


def test_a_core_module_importing_a_family_is_found(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "", "registry.py": "from .families.gan import FAMILY\n",
        "families/__init__.py": "", "families/gan/__init__.py": "FAMILY = 1\n",
        "metrics/__init__.py": "def evaluate():\n    from ..families.gan import FAMILY\n",
    })
    assert contract_violations(root, "pkg") == [
        "the core imports no family (it reads the records through the registry): "
        "pkg.metrics -> pkg.families.gan (line 2)"]


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root
