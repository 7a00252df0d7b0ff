"""crmsync installed outside the checkout is whole: the wheel holds every subpackage of
plugins/crmsync and the SQL of include/sql, and the installed package reads its SQL without
CRMSYNC_SQL_DIR.

The wheel is built from a copy of the project: setuptools builds in the tree and keeps stale
files in build/ from one build to the next, so a wheel built in the checkout could hold what
the current pyproject.toml no longer ships. It is installed (no dependencies) into a throwaway
venv, whose Python then runs from outside the checkout with PYTHONPATH and CRMSYNC_SQL_DIR unset.
"""

from __future__ import annotations

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
