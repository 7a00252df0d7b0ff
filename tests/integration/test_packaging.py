"""crmsync installed outside the checkout is whole: the wheel holds every subpackage of
plugins/crmsync and the SQL of include/sql, and the installed package reads its SQL without
CRMSYNC_SQL_DIR.

The wheel is built from a copy of the project: setuptools builds in the tree and keeps stale
files in build/ from one build to the next, so a wheel built in the checkout could hold what
the current pyproject.toml no longer ships. It is installed (no dependencies) into a throwaway
venv, whose Python then runs from outside the checkout with PYTHONPATH and CRMSYNC_SQL_DIR unset.

The declared dependencies (pyproject.toml, ranges) and this repository's pins (requirements.txt,
constraints.txt) agree: every package the code imports is declared, and every declared package
is pinned within its range (test_declared_dependencies_cover_the_imports_and_the_pins_satisfy_them).
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "plugins" / "crmsync"
SQL = ROOT / "include" / "sql"
# Not part of a build: the venv, git, caches, runtime leftovers, earlier builds.
NOT_COPIED = shutil.ignore_patterns(".venv", ".git", "artifacts", ".airflow", ".run", "__pycache__", "*.pyc",
                                    ".pytest_cache", ".hypothesis", "*.egg-info", "build", "dist", "node_modules")
READ_EVERY_STATEMENT = """
import json, sys
import crmsync, crmsync.db.sql as sql
names = json.loads(sys.argv[1])
print(json.dumps({"package": crmsync.__file__, "sql_dir": str(sql.sql_dir()), "names": sql.names(),
                  "statements": {name: sql.load(name) for name in names}}))
"""


def packages_on_disk() -> set[str]:
    """Every package under plugins/crmsync (a folder with __init__.py), as a dotted name."""
    return {".".join(init.parent.relative_to(PACKAGE.parent).parts) for init in PACKAGE.rglob("__init__.py")
            if "__pycache__" not in init.parts}


def modules_on_disk() -> set[str]:
    return {path.relative_to(PACKAGE.parent).as_posix() for path in PACKAGE.rglob("*.py")
            if "__pycache__" not in path.parts}


def sql_on_disk() -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(SQL.glob("*.sql"))}


def _builds_wheels_offline() -> bool:
    """Can the venv's own setuptools build a wheel (``--no-build-isolation``)? It needs the
    ``wheel`` package, or setuptools 70.1 or later, which carries bdist_wheel itself."""
    if importlib.util.find_spec("wheel") is not None:
        return True
    from importlib.metadata import version

    major, minor, *_ = (int(part) for part in version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1)


def _clean_env() -> dict[str, str]:
    """This environment without PYTHONPATH (the suite puts plugins/ there: pip would see the
    checkout's crmsync as installed already) and without CRMSYNC_SQL_DIR."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "CRMSYNC_SQL_DIR")}


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_clean_env(), **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """The project copied, built into a wheel, the wheel installed into a throwaway venv."""
    base = tmp_path_factory.mktemp("packaging")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    # Without isolation the venv's setuptools builds, offline; an older setuptools without the
    # `wheel` package cannot, and pip fetches pyproject.toml's build requirements (PyPI or its cache).
    offline = ["--no-build-isolation"] if _builds_wheels_offline() else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "--disable-pip-version-check",
          "-w", str(base / "dist"), str(source)], cwd=base)
    [wheel] = (base / "dist").glob("crmsync-*.whl")

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
          "--disable-pip-version-check", "--quiet", str(wheel)], cwd=base)
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    return {"source": source, "wheel": wheel, "files": files, "python": python, "base": base}


def test_pyproject_lists_every_subpackage_on_disk_and_the_sql():
    """The fast half of the check (no build): pyproject.toml's explicit package list."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    missing = packages_on_disk() - listed
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert listed - packages_on_disk() == {"crmsync._sql"}, "pyproject.toml lists packages that are not on disk"
    assert config["package-dir"]["crmsync._sql"] == "include/sql"
    assert config["package-data"]["crmsync._sql"] == ["*.sql"]
    assert config["package-data"]["crmsync.console"] == ["templates/*.html", "static/*"]


def test_the_wheel_holds_every_subpackage_module_and_statement(built):
    files = built["files"]
    assert packages_on_disk() >= {"crmsync.sumit.api", "crmsync.hooks", "crmsync.operators", "crmsync.sandbox",
                                  "crmsync.testing", "crmsync.flows"}
    missing_packages = {name for name in packages_on_disk() if name.replace(".", "/") + "/__init__.py" not in files}
    assert not missing_packages, f"the wheel lacks the packages {sorted(missing_packages)}"
    missing_modules = modules_on_disk() - files
    assert not missing_modules, f"the wheel lacks {sorted(missing_modules)}"
    statements = {f"crmsync/_sql/{name}.sql" for name in sql_on_disk()}
    assert statements and statements <= files, f"the wheel lacks {sorted(statements - files)}"
    console = PACKAGE / "console"
    assets = {f"crmsync/console/{p.relative_to(console).as_posix()}"
              for p in [*console.glob("templates/*"), *console.glob("static/*")]}
    assert "crmsync/console/templates/customers.html" in assets and "crmsync/console/static/console.js" in assets
    assert assets <= files, f"the wheel lacks the console's {sorted(assets - files)}"


def test_the_build_leaves_no_sql_copy_in_the_source_tree(built):
    assert not (built["source"] / "plugins" / "crmsync" / "_sql").exists()


def test_the_installed_package_reads_every_statement_without_crmsync_sql_dir(built):
    expected = sql_on_disk()
    assert "schema" in expected and "pull_page" in expected
    outside = built["base"]  # not the checkout, nor the copy it was built from
    result = _run([str(built["python"]), "-c", READ_EVERY_STATEMENT, json.dumps(sorted(expected))], cwd=outside)
    found = json.loads(result.stdout)
    venv = str(built["python"].parent.parent)
    assert found["package"].startswith(venv), f"crmsync was imported from {found['package']}, not the venv"
    assert found["sql_dir"].startswith(venv) and found["sql_dir"].endswith("crmsync/_sql"), found["sql_dir"]
    assert found["names"] == sorted(expected)
    differing = [name for name, text in expected.items() if found["statements"][name] != text]
    assert not differing, f"installed statements differ from include/sql: {differing}"


def test_the_checkout_reads_include_sql_and_names_every_statement():
    """In the checkout (editable install, Airflow's plugins folder) nothing is copied into
    plugins/: crmsync.db.sql reads include/sql itself."""
    from crmsync.db import sql

    if os.environ.get("CRMSYNC_SQL_DIR"):
        pytest.skip("CRMSYNC_SQL_DIR is set")
    assert not (PACKAGE / "_sql").exists()
    assert sql.sql_dir() == SQL
    assert sql.names() == sorted(sql_on_disk())


# -- declared dependencies, imports and pins ----------------------------------------------------------

TESTING = PACKAGE / "testing"  # crmsync.testing: the suite's and the local stack's, may use the `test` extra
# a module that speaks to an optional integration, and the extra that brings it
OPTIONAL = {PACKAGE / "airflow_side" / "lineage.py": "openlineage"}
PIN_FILES = ("requirements.txt", "constraints.txt")


def imported_modules() -> dict[str, set[Path]]:
    """Every absolute import in plugins/crmsync (AST, so imports inside functions and ``try`` count
    too), as the dotted module name -> the files importing it; the standard library and crmsync
    itself left out. ``from a.b import c`` counts as ``a.b``."""
    found: dict[str, set[Path]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:  # relative imports are crmsync's own
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top != "crmsync":
                    found.setdefault(name, set()).add(path)
    return found


def _module_owners() -> dict[str, set[str]]:
    """Dotted module or package name -> the installed distributions whose files hold it (from their
    RECORDs): finer than ``packages_distributions()`` where one top-level package is shared
    (``airflow``: Airflow's core, its task SDK and every provider)."""
    owners: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions():
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0] in ("..", "") or file.suffix != ".py":
                continue
            dotted = parts[:-1] if parts[-1] == "__init__.py" else (*parts[:-1], parts[-1][:-3])
            owners.setdefault(".".join(dotted), set()).add(canonicalize_name(dist.metadata["Name"]))
    return owners


def distributions_providing(module: str, top_level: dict[str, list[str]], owners: dict[str, set[str]]) -> set[str]:
    """The distributions that can provide ``module``: ``packages_distributions()`` for its top-level
    name; where several distributions share that name, the ones holding the module itself (its
    longest dotted prefix that some distribution's files hold)."""
    top = module.partition(".")[0]
    candidates = {canonicalize_name(name) for name in top_level.get(top, ())}
    if len(candidates) > 1:
        parts = module.split(".")
        for end in range(len(parts), 0, -1):
            holders = owners.get(".".join(parts[:end]), set()) & candidates
            if holders:
                return holders
    return candidates


def _meta_requirements(declared: set[str]) -> set[str]:
    """What a declared distribution that holds no module of its own (a meta-package: apache-airflow
    is apache-airflow-core plus apache-airflow-task-sdk) requires unconditionally: declaring it
    declares them."""
    implied: set[str] = set()
    for name in declared:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if any(file.suffix == ".py" for file in dist.files or ()):
            continue
        for line in dist.requires or ():
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                implied.add(canonicalize_name(requirement.name))
    return implied


def declared_requirements() -> dict[str, list[Requirement]]:
    """pyproject.toml's requirements: ``"dependencies"`` and each extra by name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"dependencies": [Requirement(line) for line in project["dependencies"]],
            **{extra: [Requirement(line) for line in lines]
               for extra, lines in project.get("optional-dependencies", {}).items()}}


def pinned_versions() -> dict[str, dict[str, str]]:
    """Normalized name -> {file: version} for every ``name==version`` line of the pin files."""
    pins: dict[str, dict[str, str]] = {}
    for filename in PIN_FILES:
        for number, raw in enumerate((ROOT / filename).read_text(encoding="utf-8").splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith("-"):  # comments, -r/-c/--index-url lines
                continue
            requirement = Requirement(line)
            exact = [spec.version for spec in requirement.specifier if spec.operator in ("==", "===")]
            assert len(exact) == 1 and "*" not in exact[0], f"{filename}:{number}: not an exact pin: {raw!r}"
            pins.setdefault(canonicalize_name(requirement.name), {})[filename] = exact[0]
    return pins


def test_declared_dependencies_cover_the_imports_and_the_pins_satisfy_them():
    """(a) Every third-party module plugins/crmsync imports comes from a distribution declared in
    ``[project].dependencies`` (modules only crmsync.testing imports: or from the ``test`` extra);
    (b) every declared distribution (dependencies and every extra) is pinned in requirements.txt or
    constraints.txt, at a version its specifier allows."""
    declared = declared_requirements()
    assert "test" in declared, "pyproject.toml has no `test` extra"
    runtime = {canonicalize_name(r.name) for r in declared["dependencies"]}
    runtime |= _meta_requirements(runtime)
    for_testing = runtime | {canonicalize_name(r.name) for r in declared["test"]}
    for_testing |= _meta_requirements(for_testing)

    # (a) imports -> declared distributions
    imports = imported_modules()
    assert {"airflow.sdk", "msgspec", "psycopg"} <= set(imports), "the import scan found too little"
    top_level, owners = importlib.metadata.packages_distributions(), _module_owners()
    undeclared: dict[tuple[str, str], dict[str, set[str]]] = {}  # (distributions, where) -> modules, files
    unknown = []
    for module, files in sorted(imports.items()):
        providers = distributions_providing(module, top_level, owners)
        if not providers:
            unknown.append(f"{module} (imported by {sorted(str(f.relative_to(ROOT)) for f in files)})")
            continue
        only_testing = all(TESTING in f.parents for f in files)
        optional = {OPTIONAL.get(f) for f in files}
        if len(optional) == 1 and None not in optional:  # only the integration's own module imports it
            [extra] = optional
            allowed = runtime | {canonicalize_name(r.name) for r in declared[extra]}
            allowed |= _meta_requirements(allowed)
        else:
            allowed = for_testing if only_testing else runtime
        if not providers & allowed:
            where = "[project] dependencies nor the test extra" if only_testing else "[project] dependencies"
            entry = undeclared.setdefault((" or ".join(sorted(providers)), where), {"modules": set(), "files": set()})
            entry["modules"].add(module)
            entry["files"] |= {str(f.relative_to(ROOT)) for f in files}
    assert not unknown, f"no installed distribution provides {unknown}"
    assert not undeclared, "pyproject.toml does not declare what the code imports:\n" + "\n".join(
        f"  {providers}: not in {where} (imports {sorted(entry['modules'])} in {sorted(entry['files'])})"
        for (providers, where), entry in undeclared.items())

    # (b) declared distributions -> pins
    pins = pinned_versions()
    disagreeing = {name: files for name, files in pins.items() if len(set(files.values())) > 1}
    assert not disagreeing, f"requirements.txt and constraints.txt pin different versions: {disagreeing}"
    unpinned, outside = [], []
    for group, requirements in declared.items():
        for requirement in requirements:
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": group}):
                continue  # not for this Python or platform
            pinned = pins.get(canonicalize_name(requirement.name))
            if pinned is None:
                unpinned.append(f"{requirement} ({group})")
                continue
            version = next(iter(pinned.values()))
            if not requirement.specifier.contains(version, prereleases=True):
                outside.append(f"{requirement} ({group}): pinned {version} in {' and '.join(sorted(pinned))}")
    assert not unpinned, f"declared in pyproject.toml but pinned in neither {PIN_FILES}: {unpinned}"
    assert not outside, "the pins lie outside the declared ranges:\n" + "\n".join(outside)
