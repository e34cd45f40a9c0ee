"""The package's layout: every module in one layer of the data flow, and no import against that flow.

The layers, bottom to top (docs/architecture.md draws them): the settings and the pinned arithmetic, then what is
kept on disk, the images, the networks, the numbers about them, the explanations, the checks on explanations, what
a reader sees, the explorer, and the command-line runners. A module may import its own layer and the layers
below it, never one above: the images cannot depend on a report, a method cannot depend on the checks run on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cnnlib import config

PACKAGE = config.REPO_ROOT / "cnnlib"

LAYERS = (  # (prefix, what it holds), bottom first; a module belongs to the longest prefix that names it
    ("cnnlib", "the settings (config), the method table, the pinned arithmetic, the backend layer"),
    ("cnnlib.store", "files, caches, results JSON, output names"),
    ("cnnlib.data", "the images and the split"),
    ("cnnlib.models", "the networks, their training and inference"),
    ("cnnlib.stats", "accuracies, intervals and tests, repeated runs"),
    ("cnnlib.interpret", "the interpretability methods"),
    ("cnnlib.interpret.checks", "checks on explanations: faithfulness, sanity, comparison"),
    ("cnnlib.report", "figures, tables, findings, the PDF"),
    ("cnnlib.explore", "the interactive explorer"),
    ("cnnlib.run", "command-line runners and the notebooks' shared setup"),
)
PREFIXES = [prefix for prefix, _ in LAYERS]

MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(config.REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    """Index in LAYERS of the longest prefix naming ``module`` (a package's own ``__init__`` included)."""
    matches = [i for i, prefix in enumerate(PREFIXES) if module == prefix or module.startswith(prefix + ".")]
    return max(matches, key=lambda i: len(PREFIXES[i]))


def imported(path: Path) -> set[str]:
    """The ``cnnlib`` modules ``path`` imports, at top level or inside a function (a name imported from a
    package counts as the module of that name when there is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "cnnlib"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cnnlib":
            submodules = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
            found |= submodules or {node.module}
    return found


def test_every_module_has_a_layer_and_every_layer_a_package():
    for prefix in PREFIXES:
        assert prefix in MODULES, f"layer {prefix} has no package (no {prefix.replace('.', '/')}/__init__.py)"
    top_level = {m for m in MODULES if m.count(".") == 1 and not (PACKAGE / m.split(".")[1]).is_dir()}
    assert top_level == {
        "cnnlib.config",
        "cnnlib.arithmetic",
        "cnnlib.backend",
        "cnnlib._tensorflow",
        "cnnlib.methods",
    }, "a new top-level module: put it in the subpackage whose concern it is"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_against_the_data_flow(module):
    against = sorted(
        f"{target} (layer {PREFIXES[layer(target)]})"
        for target in imported(MODULES[module])
        if layer(target) > layer(module)
    )
    assert not against, f"{module} (layer {PREFIXES[layer(module)]}) imports what lies above it: {against}"


def test_the_rule_catches_an_import_against_the_flow(tmp_path):
    """The check above can fail: an image module importing the report is found."""
    planted = tmp_path / "planted.py"
    planted.write_text("from cnnlib.report import plots\nimport cnnlib.run.scale\n")
    assert imported(planted) == {"cnnlib.report.plots", "cnnlib.run.scale"}
    assert all(layer(target) > layer("cnnlib.data.images") for target in imported(planted))


def test_subpackages_import_nothing_on_import_but_their_public_faces():
    """A package's ``__init__`` is a docstring (so a cache key's code closure stays narrow: importing
    ``cnnlib.models.training`` does not pull in VGG19), except the two public faces that re-export their
    package's functions for ``from cnnlib import interpret`` / ``explore``."""
    for module, path in MODULES.items():
        if path.name != "__init__.py" or module in ("cnnlib", "cnnlib.interpret", "cnnlib.explore"):
            continue
        tree = ast.parse(path.read_bytes())
        assert ast.get_docstring(tree), f"{path}: say what the package holds"
        assert len(tree.body) == 1, f"{path}: a package's __init__ holds its docstring only"


def test_no_module_over_the_line_limit_without_a_reason():
    long = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    over = {m: n for m, n in long.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}; split them by concern"
