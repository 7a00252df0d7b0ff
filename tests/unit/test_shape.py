"""The package's shape: imports run one way (no cycle, deferred imports included) and no
module grows past what a reader takes in at once."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "crmsync"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """Every crmsync module ``name`` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # ``from crmsync.flows import pull`` imports the module crmsync.flows.pull
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that starts and ends at the same module, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_it_is_shown():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_deferred_imports_count_as_imports():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    # crmsync.hooks.sumit imports Airflow's masker inside a function, and crmsync modules at the top
    assert "crmsync.sumit.api" in graph["crmsync.hooks.sumit"]
    assert "crmsync.flows.pull" in graph["crmsync.operators.sync"]


def test_no_import_cycle_inside_the_package():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_model_is_the_vocabulary_and_imports_no_logic():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    assert graph["crmsync.core.model"] <= {"crmsync.core.text"}
    assert "crmsync.core.model" in graph["crmsync.core.mapping"] and "crmsync.core.model" in graph["crmsync.core.fingerprint"]


def test_no_module_is_over_500_lines():
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


# -- the layers ---------------------------------------------------------------------------------
# docs/layout.md draws them; a module may import its own layer and the layers ranked below it,
# never one beside it or above it. crmsync.core is the pure sync logic: usable without Airflow,
# a database or the network.
LAYERS = {
    "crmsync.core": 0,
    "crmsync.db": 1,            # PostgreSQL
    "crmsync.sumit": 1,         # SUMIT's wire formats and settings, no HTTP of its own
    "crmsync.hooks": 2,         # SumitHook: HTTP
    "crmsync.flows": 3,         # the jobs' steps: the store and the hook together
    "crmsync.airflow_side": 3,  # deployment settings, params, notifier
    "crmsync.operators": 4,
    "crmsync.console": 4,
    "crmsync.provider_info": 4,
    "crmsync.dags": 5,          # the DAGs, built from the operators (dags/ re-exports them)
    "crmsync.testing": 5,
    "crmsync.__main__": 5,      # `crmsync --version`
}
# Third-party and standard modules a layer must not import (matched as a prefix of the dotted name).
AIRFLOW = {"airflow"}
DATABASE = {"psycopg", "psycopg2", "psycopg_pool", "sqlalchemy", "asyncpg"}
NETWORK = {"requests", "requests_toolbelt", "httpx", "urllib3", "aiohttp", "tenacity", "socket", "ssl",
           "http", "urllib.request", "fastapi", "starlette"}
FORBIDDEN = {
    "crmsync.core": AIRFLOW | DATABASE | NETWORK,
    "crmsync.db": AIRFLOW | NETWORK,
    "crmsync.sumit": AIRFLOW | DATABASE | NETWORK,
    "crmsync.hooks": DATABASE,
    "crmsync.flows": AIRFLOW,
    "crmsync.sandbox": AIRFLOW | DATABASE,
}


def layer_of(module: str) -> str | None:
    for layer in sorted({*LAYERS, "crmsync.sandbox"}, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def external_imports(path: Path) -> set[str]:
    """Every non-crmsync module ``path`` imports (dotted names), at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] != "crmsync"}


def layer_violations(graph: dict[str, set[str]], externals: dict[str, set[str]]) -> list[str]:
    """What breaks the layer rule: an import of a layer beside or above, the sandbox reaching
    out of itself (or anything reaching into it but the test stack), a forbidden third-party module."""
    found = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        for target in sorted(targets):
            other = layer_of(target)
            if layer is None or other is None or other == layer:
                continue
            if "crmsync.sandbox" in (layer, other):
                if layer != "crmsync.testing":
                    found.append(f"{module} imports {target} (the sandbox stands alone)")
            elif LAYERS[other] >= LAYERS[layer]:
                found.append(f"{module} imports {target} ({other} is not below {layer})")
        for name in sorted(externals.get(module, ())):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN.get(layer, ())):
                found.append(f"{module} imports {name}, which {layer} must not")
    return found


def test_every_module_belongs_to_a_layer():
    homeless = [name for name in MODULES if name != "crmsync" and layer_of(name) is None]
    assert not homeless, f"put these in a layer (and in LAYERS): {homeless}"


def test_imports_point_down_the_layers_only():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    externals = {name: external_imports(path) for name, path in MODULES.items()}
    assert layer_violations(graph, externals) == []


def test_the_layer_rule_catches_a_pure_module_reaching_out():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    externals = {name: external_imports(path) for name, path in MODULES.items()}
    graph["crmsync.core.merge"] = graph["crmsync.core.merge"] | {"crmsync.db.store"}
    externals["crmsync.core.guard"] = externals["crmsync.core.guard"] | {"psycopg.rows"}
    externals["crmsync.core.summary"] = externals["crmsync.core.summary"] | {"airflow.sdk"}
    externals["crmsync.core.mapping"] = externals["crmsync.core.mapping"] | {"requests"}
    graph["crmsync.db.store"] = graph["crmsync.db.store"] | {"crmsync.sumit.redact"}
    assert layer_violations(graph, externals) == [
        "crmsync.core.guard imports psycopg.rows, which crmsync.core must not",
        "crmsync.core.mapping imports requests, which crmsync.core must not",
        "crmsync.core.merge imports crmsync.db.store (crmsync.db is not below crmsync.core)",
        "crmsync.core.summary imports airflow.sdk, which crmsync.core must not",
        "crmsync.db.store imports crmsync.sumit.redact (crmsync.sumit is not below crmsync.db)",
    ]


def test_the_pure_layer_imports_without_airflow_a_database_or_the_network():
    """Imported for real in a fresh interpreter: nothing it pulls in, however indirectly, is
    Airflow, a database driver or an HTTP client."""
    import subprocess
    import sys

    core = sorted(name for name in MODULES if layer_of(name) == "crmsync.core")
    code = (
        "import importlib, sys\n"
        f"for name in {core!r}: importlib.import_module(name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=PACKAGE.parent, env={"PATH": "", "PYTHONPATH": str(PACKAGE.parent)})
    loaded = set(done.stdout.split())
    assert "crmsync.core.merge" in loaded
    bad = {name for name in loaded
           if any(name == b or name.startswith(b + ".") for b in AIRFLOW | DATABASE | NETWORK)}
    assert not bad, bad
    assert not {name for name in loaded if name.startswith(("crmsync.db", "crmsync.hooks", "crmsync.sumit"))}
