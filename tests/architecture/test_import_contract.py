"""The import contract, read from the source: layers import only downward, packages import each
other through their public surface (no `sdekit.pkg._private` from another package), applications
import only public `sdekit` names, and there is no import cycle between modules."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "sdekit"

# Lowest first. Shared utilities sit under everything; applications on top.
LAYERS = [
    {"_typing", "_once", "_batch", "_results", "_xla_cpu"},
    {"brownian"},
    {"terms"},
    {"solvers"},
    {"controllers"},
    {"_solve"},
    {"adjoint"},
    {"ensemble"},
    {"data"},  # datasets, which neural models train on
    {"convergence", "neural", "diffusion", "mcmc", "fractional"},  # applications
    {"__init__", "__main__"},
]
APPLICATIONS = LAYERS[-3] | LAYERS[-2]


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imports(name, path):
    """The `sdekit` modules that `name` imports, resolved to absolute dotted names."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "sdekit":
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                yield candidate if (ROOT.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or \
                    (ROOT.parent / candidate.replace(".", "/")).is_dir() else target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sdekit":
                    yield alias.name


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(module: str) -> int:
    top = _top(module)
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


EDGES = sorted({(name, target) for name, path in _modules() for target in _imports(name, path) if target != name})


@pytest.mark.parametrize("name, target", [e for e in EDGES if _top(e[0]) != _top(e[1])])
def test_layers_import_only_downward(name, target):
    if _top(name) == "__main__" or name == "sdekit":
        return
    if _top(name) in APPLICATIONS and target == "sdekit":
        return  # `import sdekit as sk`: applications use the public names
    below = _layer(target) < _layer(name) or _layer(target) == _layer(name) == 0  # shared utilities
    assert below, f"{name} (layer {_layer(name)}) imports {target} (layer {_layer(target)})"


def test_packages_import_each_other_through_their_public_surface():
    private = [(n, t) for n, t in EDGES if _top(n) != _top(t) and _top(t) not in LAYERS[0]
               and any(part.startswith("_") for part in t.split(".")[2:])]
    assert not private, "\n".join(f"{n} imports the private {t}" for n, t in private)


def test_applications_import_only_public_sdekit_names():
    bad = [(n, t) for n, t in EDGES if _top(n) in APPLICATIONS and _top(n) != _top(t)
           and any(part.startswith("_") for part in t.split(".")[1:])]
    assert not bad, "\n".join(f"{n} imports the private {t}" for n, t in bad)


def test_no_import_cycles_between_modules():
    graph = {}
    for name, target in EDGES:
        graph.setdefault(name, set()).add(target)
    # Package __init__ files re-export their own modules: an edge from a module to its own
    # package's __init__ is a cycle too, so keep them.
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
