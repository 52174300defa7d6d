"""The package's import graph stays one-way (issue 25, docs/layout.md).

The walker reads every module of ``medxlate/`` with the standard library's :mod:`ast` (no
import runs): module-level and function-level ``import``/``from ... import`` statements,
relative ones resolved against the importing module's package. It fails on any cycle between
modules and on the upward arrows listed in :data:`FORBIDDEN`. Its own oracle is a small
package built in ``tmp_path`` whose cycles and arrows are known by construction.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "medxlate"

# importer prefix -> module prefixes it must not import (a prefix matches itself and
# everything below it). Function-level imports count: a lazy import is still an arrow. The
# order, bottom to top: errors, intensity, io, preprocess/phantom, diffusion/evaluate,
# weights (format, verify, shipped), models, train, synth, generate, weights.importers, cli.
# torch is ruled out where a module must stay torch-free even when its functions run; the
# weights modules import torch lazily, inside the functions that handle tensors
# (tests/cli/test_lazy_imports.py checks that importing them does not).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "medxlate.errors": ("medxlate.",),
    "medxlate.intensity": ("medxlate.", "torch"),
    "medxlate.io": ("medxlate.preprocess", "medxlate.phantom", "medxlate.diffusion",
                    "medxlate.models", "medxlate.train", "medxlate.synth", "medxlate.evaluate",
                    "medxlate.generate", "medxlate.weights", "medxlate.cli", "torch"),
    "medxlate.preprocess": ("medxlate.diffusion", "medxlate.models", "medxlate.train",
                            "medxlate.synth", "medxlate.evaluate", "medxlate.generate",
                            "medxlate.weights", "medxlate.cli", "torch"),
    "medxlate.phantom": ("medxlate.diffusion", "medxlate.models", "medxlate.train",
                         "medxlate.synth", "medxlate.evaluate", "medxlate.generate",
                         "medxlate.weights", "medxlate.cli"),
    "medxlate.diffusion": ("medxlate.models", "medxlate.train", "medxlate.synth",
                           "medxlate.evaluate", "medxlate.generate", "medxlate.weights",
                           "medxlate.cli"),
    "medxlate.evaluate": ("medxlate.models", "medxlate.train", "medxlate.synth",
                          "medxlate.generate", "medxlate.weights", "medxlate.cli"),
    # the checkpoint format, its verification and the shipped manifest sit below every
    # user of a weights file; only the importers (weights.importers, weights.controlnet)
    # build networks, so they alone may reach the model families
    "medxlate.weights.format": ("medxlate.models", "medxlate.train", "medxlate.synth",
                                "medxlate.cli"),
    "medxlate.weights.verify": ("medxlate.models", "medxlate.train", "medxlate.synth",
                                "medxlate.cli"),
    "medxlate.weights.shipped": ("medxlate.models", "medxlate.train", "medxlate.synth",
                                 "medxlate.cli"),
    "medxlate.weights.__init__": ("medxlate.models", "medxlate.train", "medxlate.synth",
                                  "medxlate.cli", "medxlate.weights.importers",
                                  "medxlate.weights.controlnet"),
    "medxlate.models": ("medxlate.train", "medxlate.synth", "medxlate.generate",
                        "medxlate.cli"),
    "medxlate.train": ("medxlate.synth", "medxlate.generate", "medxlate.cli"),
    # synth sits above train (it may use train's config checks), below generate and cli
    "medxlate.synth": ("medxlate.generate", "medxlate.cli"),
    "medxlate.generate": ("medxlate.train", "medxlate.cli"),
}


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` below the package folder ``root``.

    A package's ``__init__.py`` is named after the package (``pkg.sub``), and
    :func:`import_edges` names it so too.
    """
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest known module that ``name`` starts with (``pkg.mod.Class`` -> ``pkg.mod``);
    ``name`` itself when it is not one of ours (a third-party module)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return name


def import_edges(root: Path) -> dict[str, set[str]]:
    """Module -> the modules it imports anywhere in its body (ours resolved to the module,
    others by their full dotted name)."""
    modules = module_files(root)
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(_resolve(alias.name, modules) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    # `from pkg import sub` imports the module pkg.sub; `from mod import f`
                    # imports mod
                    targets.add(sub if sub in modules else _resolve(base, modules))
        targets.discard(name)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, first repeated last) per strongly connected component
    of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in edges:
                continue  # a third-party module
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [_cycle_in(component, edges) for component in components]


def _cycle_in(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(edges[node] & members):
                if child == start:
                    return paths[node] + [start]
                if child not in paths:
                    paths[child] = paths[node] + [child]
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{component} is not strongly connected")


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix if prefix.endswith(".") else prefix + ".")


def upward_arrows(edges: dict[str, set[str]], forbidden: dict[str, tuple[str, ...]],
                  files: dict[str, Path]) -> list[str]:
    """``importer -> imported`` for every import that ``forbidden`` rules out."""
    found = []
    for importer, targets in sorted(edges.items()):
        key = f"{importer}.__init__" if files[importer].name == "__init__.py" else importer
        for rule, banned in forbidden.items():
            if not (_matches(key, rule) or _matches(importer, rule)):
                continue
            for target in sorted(targets):
                if any(_matches(target, b) or target == b.rstrip(".") for b in banned):
                    found.append(f"{importer} -> {target}")
    return sorted(set(found))


# --- the oracle: a package whose graph is known by construction --------------------------

def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "toy"


def test_walker_finds_a_relative_function_level_cycle_and_an_upward_arrow(tmp_path):
    toy = _write(tmp_path, {
        "toy/__init__.py": "",
        "toy/low.py": "import numpy as np\n",
        # a <-> b: a imports b at module level, b imports a inside a function, relatively
        "toy/sub/__init__.py": "from toy.sub.a import f\n",
        "toy/sub/a.py": "from . import b\nfrom ..low import np\ndef f():\n    return b\n",
        "toy/sub/b.py": "def g():\n    from .a import f\n    return f\n",
        # c -> d -> e -> c, all absolute, one of them as `import x.y`
        "toy/c.py": "import toy.d\n",
        "toy/d.py": "from toy import e\n",
        "toy/e.py": "def h():\n    from toy.c import thing\n",
        # no cycle: top imports low, low imports nothing of ours
        "toy/top.py": "import toy.low\nfrom toy.sub import a\nimport torch.nn\n",
    })
    edges = import_edges(toy)
    assert edges["toy.sub.a"] == {"toy.sub.b", "toy.low"}
    assert edges["toy.sub.b"] == {"toy.sub.a"}
    assert edges["toy.top"] == {"toy.low", "toy.sub.a", "torch.nn"}
    assert edges["toy.low"] == {"numpy"}
    found = sorted(cycles(edges))
    assert found == [["toy.c", "toy.d", "toy.e", "toy.c"],
                     ["toy.sub.a", "toy.sub.b", "toy.sub.a"]]
    files = module_files(toy)
    rules = {"toy.low": ("toy.",), "toy.sub": ("torch",), "toy.top": ("torch",)}
    assert upward_arrows(edges, rules, files) == ["toy.top -> torch.nn"]


def test_walker_passes_an_acyclic_package(tmp_path):
    toy = _write(tmp_path, {
        "toy/__init__.py": "from toy.api import run\n",
        "toy/api.py": "from toy import core\nfrom .core import step\n",
        "toy/core.py": "import os\n",
    })
    edges = import_edges(toy)
    assert edges == {"toy": {"toy.api"}, "toy.api": {"toy.core"}, "toy.core": {"os"}}
    assert cycles(edges) == []


# --- the rules on medxlate itself ---------------------------------------------------------

@pytest.fixture(scope="module")
def graph():
    return import_edges(ROOT), module_files(ROOT)


def test_medxlate_has_no_import_cycle(graph):
    edges, _ = graph
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_medxlate_has_no_upward_arrow(graph):
    edges, files = graph
    found = upward_arrows(edges, FORBIDDEN, files)
    assert not found, "imports against docs/layout.md:\n" + "\n".join(found)


def test_the_walker_sees_the_whole_package(graph):
    edges, files = graph
    # a sample of arrows that exist, at module and function level, so that a walker that
    # silently saw nothing could not pass the two tests above
    assert "medxlate.intensity" in edges["medxlate.preprocess.pipeline"]
    assert "medxlate.synth.stream" in edges["medxlate.synth.volume"]  # inside run_model
    assert "medxlate.weights.format" in edges["medxlate.weights"]
    assert len(files) > 150
