"""Imports point one way (shared/DESIGN.md "Layers"): the import graph of ``videossl/``, built with ``ast`` from every
``import`` (top-level and inside functions), has no cycle between modules and no import from a lower layer to a
higher one. The layer map is written here; a new top-level module must be added to it."""
import ast
from pathlib import Path

import videossl

PACKAGE = Path(videossl.__file__).parent

# lower numbers may not import higher ones; equal layers may import each other (but not in a cycle)
LAYERS = {
    "errors": 0, "files": 0,
    "losses": 1, "heads": 1, "transforms": 1, "backbones": 1, "data": 1, "nn": 1, "loading": 1, "reference": 1,
    "pictures": 1,
    "methods": 2,
    "config": 3, "config_checks": 3, "engine": 3, "eval": 3, "reliability": 3, "reproduce": 3,
    "bench": 4, "viz": 4, "search": 4, "plan": 4,
    "quickstart": 5,
    "cli": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """The videossl modules ``path`` imports (``from x import y`` counts ``x.y`` when that is a module)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, name, set(files)) - {name} for name, path in files.items()}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_top_level_module_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").is_file())}
    assert sorted(tops - set(LAYERS)) == []


def test_no_import_goes_up_a_layer():
    upward = sorted(f"{a} -> {b}" for a, targets in import_graph().items() for b in targets
                    if layer(a) is not None and layer(b) is not None and layer(b) > layer(a))
    assert upward == []


def test_no_import_cycle():
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


# Imports sit at the top of files (shared/DESIGN.md, issue 22). Inside a function only in cli.py (each command's
# loader imports its module, so `videossl --help` stays fast) and these third-party modules, for the reason given.
LAZY_THIRD_PARTY = {
    "fcntl": "POSIX only (file locks)",
    "resource": "POSIX only (peak RSS in bench)",
    "decord": "its bundled FFmpeg changes PyAV's encoders once loaded; loaded only when the decord backend decodes",
    "torchcodec": "optional decoder backend, may not be installed",
    "matplotlib": "selects the Agg backend when a plot is drawn, not as a side effect of importing videossl",
    "transformers": "+3 s per process; only the ViT backbones build its models",
    "pytorchvideo": "+2 s; only its backbones and the benchmark peers",
    "lightly": "benchmark peer heads and losses (LARS is imported at the top of engine/optim.py)",
    "lightning": "+several s; only when pretrain launches Fabric (plan and bench import engine/ without training)",
    "torch._inductor": "+1 s; only with train.compile",
    "torch.distributed": "absent from torch builds without distributed support",
}


def imports_inside_functions() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "cli.py" and path.parent == PACKAGE:
            continue
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom):
                    names = ["." if node.level else node.module or ""]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for name in names:
                    if not any(name == m or name.startswith(m + ".") for m in LAZY_THIRD_PARTY):
                        found.append((str(path.relative_to(PACKAGE)), node.lineno, name))
    return sorted(set(found))


def test_imports_sit_at_the_top_of_files():
    assert imports_inside_functions() == []
