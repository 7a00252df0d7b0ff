"""crmsync as a deployment gets it: the sdist is whole, and the wheel, installed with the pinned tree
into a fresh virtual environment (nothing from this checkout), gives a working Airflow: the
provider, the console plugin from its entry point, the 8 DAGs from the one-line dags file, the
``crmsync`` command, and a pull that fills ``sumit_customers`` from the SUMIT sandbox.

Both distributions are built from a copy of the project (see test_packaging.py: setuptools builds
in the tree). The wheel is installed as ``pip install <wheel> -c constraints.txt``: Airflow and
every other dependency come from pip's indexes at this repository's exact pins. The Airflow
commands run in that venv with an environment built from scratch (none of the suite's AIRFLOW_*
variables, no PYTHONPATH) and a throwaway AIRFLOW_HOME whose dags folder holds only the one line
docs/installing.md gives, and whose plugins folder is empty.

The install downloads what the local indexes lack from PyPI (39 to 58 s measured; pip's cache is
on, but its HTTP cache keeps nothing PyPI's mirror here serves without caching headers, so every
run downloads again): the Airflow test takes 75 to 100 s in all, the sdist test about 6 s. Each test builds what it needs, so pytest-xdist can run them on
different workers without building anything twice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import API_KEY, COMPANY_ID, FAST_RETRIES, assert_no_key
from crmsync.testing.airflow_env import sumit_connection
from test_packaging import NOT_COPIED, ROOT, _builds_wheels_offline, modules_on_disk, sql_on_disk

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
VERSION = PYPROJECT["version"]
CONSTRAINTS = ROOT / "constraints.txt"
DAGS_FILE_LINE = "from crmsync.dags import *  # noqa: F403  crmsync's Airflow DAGs\n"  # docs/installing.md
DAG_IDS = {"crm_apply_crm_events", "crm_bidirectional_sync", "crm_link_customers", "crm_pull_customers",
           "crm_push_customers", "crm_resolve_conflicts", "crm_revert_run", "crm_sumit_triggers"}
INSTALL_BUDGET_SECONDS = 180  # the install (downloads included) should stay well within this
IMPORT_CHECK = """
import importlib.metadata, json, sys
import crmsync
dist = importlib.metadata.distribution("crmsync")
print(json.dumps({"file": crmsync.__file__, "version": crmsync.__version__, "path": sys.path,
                  "prefix": sys.prefix, "direct_url": json.loads(dist.read_text("direct_url.json") or "{}")}))
"""


def _host_env() -> dict[str, str]:
    """For the build and pip: this environment (pip's settings: PIP_*, certificates) without
    PYTHONPATH (the suite puts plugins/ there: pip would see the checkout's crmsync as installed),
    the suite's Airflow settings or crmsync's."""
    return {key: value for key, value in os.environ.items()
            if key != "PYTHONPATH" and not key.startswith(("AIRFLOW", "CRMSYNC"))}


def _run(command: list, *, env: dict[str, str] | None = None, timeout: float = 600, check: bool = True,
         **kwargs) -> subprocess.CompletedProcess:
    command = [str(part) for part in command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                            env=_host_env() if env is None else env, **kwargs)
    if check:
        assert result.returncode == 0, (f"{' '.join(command)} exited {result.returncode}:\n"
                                        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def _copy_project(base: Path) -> Path:
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    return source


def _build_wheel(what: Path, out: Path, cwd: Path) -> Path:
    """``pip wheel`` of a source tree or an sdist (offline where this venv's setuptools can)."""
    offline = ["--no-build-isolation"] if _builds_wheels_offline() else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "--disable-pip-version-check",
          "-w", out, what], cwd=cwd)
    [wheel] = out.glob("crmsync-*.whl")
    return wheel


def _json_output(stdout: str):
    """The JSON document of an ``-o json`` command: its last line that parses (Airflow prints
    warnings, graphviz's say, on stdout before it)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(("[", "{")):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise AssertionError(f"no JSON in the output:\n{stdout[-3000:]}")


# -- the sdist ------------------------------------------------------------------------------------


def test_the_sdist_holds_the_sources_sql_readme_changelog_and_pyproject_and_builds_the_same_wheel(tmp_path):
    source = _copy_project(tmp_path)
    # The PEP 517 build backend pyproject.toml names (setuptools), this venv's: pip builds no sdist.
    build_sdist = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    result = _run([sys.executable, "-c", build_sdist, tmp_path / "sdist"], cwd=source)
    sdist = tmp_path / "sdist" / result.stdout.strip().splitlines()[-1]
    assert sdist.name == f"crmsync-{VERSION}.tar.gz" and sdist.is_file(), sdist
    top = f"crmsync-{VERSION}/"
    with tarfile.open(sdist) as archive:
        files = {name.removeprefix(top) for name in archive.getnames() if name.startswith(top)}

    wanted = {"pyproject.toml", "README.md", "CHANGELOG.md", "PKG-INFO"}
    statements = {f"include/sql/{name}.sql" for name in sql_on_disk()}
    modules = {f"plugins/{module}" for module in modules_on_disk()}
    console = ROOT / "plugins" / "crmsync" / "console"
    assets = {f"plugins/crmsync/console/{p.relative_to(console).as_posix()}"
              for p in [*console.glob("templates/*"), *console.glob("static/*")]}
    assert "include/sql/schema.sql" in statements and assets
    missing = sorted((wanted | statements | modules | assets) - files)
    assert not missing, f"the sdist {sdist.name} lacks {missing}"

    # ... and a wheel built from the sdist alone (as pip does from PyPI) is the one the tree builds.
    wheel = _build_wheel(sdist, tmp_path / "from-sdist", cwd=tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    expected = modules_on_disk() | {f"crmsync/_sql/{name}.sql" for name in sql_on_disk()} | {
        asset.removeprefix("plugins/") for asset in assets}
    assert not expected - in_wheel, f"the wheel built from the sdist lacks {sorted(expected - in_wheel)}"


# -- the wheel, installed with the pins into a fresh venv ------------------------------------------


def _fresh_venv_with_the_wheel(base: Path) -> tuple[Path, float]:
    """The wheel built from a copy of the project, installed with constraints.txt into a new venv
    (pip's own, from ``python -m venv``). Returns the venv and the install's seconds."""
    wheel = _build_wheel(_copy_project(base), base / "dist", cwd=base)
    assert wheel.name == f"crmsync-{VERSION}-py3-none-any.whl", wheel.name
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    started = time.monotonic()
    # pip's cache is on (the default); Airflow and the rest from the indexes, at the exact pins.
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", wheel,
          "-c", CONSTRAINTS], cwd=base, timeout=900)
    return venv, time.monotonic() - started


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            [spec] = requirement.specifier
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def _airflow_env(venv: Path, home: Path, pg, sandbox) -> dict[str, str]:
    """From scratch: the venv's commands, a throwaway AIRFLOW_HOME, the two connections."""
    sumit = sumit_connection(sandbox.url, COMPANY_ID, API_KEY, **{**FAST_RETRIES, "api_profile": "guide",
                                                                  "customers_folder": "customers"})
    return {
        "PATH": os.pathsep.join([str(venv / "bin"), os.defpath]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_SUMIT_DEFAULT": sumit,
        "AIRFLOW_CONN_CRM_POSTGRES": json.dumps(pg.airflow_conn()),
        "CRMSYNC_TASK_RETRIES": "0",  # a failing task fails the run at once
    }


def test_the_wheel_with_the_pins_in_a_fresh_venv_runs_crmsync_in_airflow(tmp_path, pg, sandbox, guide_env,
                                                                         measured):
    venv, install_seconds = _fresh_venv_with_the_wheel(tmp_path)
    measured(f"the wheel installed with the pinned tree (constraints.txt) into a fresh venv in "
             f"{install_seconds:.0f} s")
    assert install_seconds < INSTALL_BUDGET_SECONDS, f"the install took {install_seconds:.0f} s"
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    outside = tmp_path  # not the checkout: every command runs here

    # crmsync comes from the venv's site-packages, installed from the wheel; nothing of the checkout on sys.path.
    found = json.loads(_run([python, "-c", IMPORT_CHECK], cwd=outside,
                            env={"PATH": os.defpath, "HOME": str(tmp_path)}).stdout)
    site_packages = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert Path(found["file"]).is_relative_to(site_packages), f"crmsync was imported from {found['file']}"
    assert Path(found["prefix"]) == venv and found["version"] == VERSION
    on_path = [entry for entry in found["path"] if entry and Path(entry).resolve().is_relative_to(ROOT)]
    assert not on_path, f"the checkout is on the venv's sys.path: {on_path}"
    assert found["direct_url"].get("url", "").endswith(".whl") and "dir_info" not in found["direct_url"], found
    # Everything installed is at constraints.txt's pin (crmsync and the venv's own pip and setuptools aside),
    # and the installed set is consistent.
    installed = {canonicalize_name(d["name"]): d["version"]
                 for d in json.loads(_run([python, "-m", "pip", "list", "--format", "json",
                                           "--disable-pip-version-check"], cwd=outside).stdout)}
    pins = _pins()
    off_pin = {name: (version, pins.get(name)) for name, version in installed.items()
               if name not in ("crmsync", "pip", "setuptools") and pins.get(name) != version}
    assert not off_pin, f"installed (version, pin): {off_pin}"
    assert installed["apache-airflow"] == pins["apache-airflow"] and installed["crmsync"] == VERSION
    _run([python, "-m", "pip", "check", "--disable-pip-version-check"], cwd=outside)

    # A deployment's AIRFLOW_HOME: the one-line dags file, an empty plugins folder.
    home = tmp_path / "airflow-home"
    (home / "dags").mkdir(parents=True)
    (home / "plugins").mkdir()
    (home / "dags" / "crmsync_dags.py").write_text(DAGS_FILE_LINE, encoding="utf-8")
    env = _airflow_env(venv, home, pg, sandbox)
    outputs: dict[str, str] = {}

    def command(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        result = _run([bin_dir / args[0], *args[1:]], env=env, cwd=outside, check=check, timeout=timeout)
        outputs[" ".join(args)] = result.stdout + result.stderr
        return result

    command("airflow", "db", "migrate")

    listed = _json_output(command("airflow", "providers", "list", "-o", "json").stdout)
    providers = {provider["package_name"]: provider for provider in listed}
    assert "crmsync" in providers, f"crmsync is not among Airflow's providers: {sorted(providers)}"
    assert providers["crmsync"]["version"] == VERSION, providers["crmsync"]

    plugins = _json_output(command("airflow", "plugins", "-o", "json").stdout)
    assert [p["name"] for p in plugins] == ["crmsync_console"], plugins
    [plugin] = plugins
    # loaded through the distribution's entry point (the plugins folder is empty)
    assert plugin["source"].startswith(f"crmsync=={VERSION}: EntryPoint(") and "group='airflow.plugins'" in \
        plugin["source"] and "crmsync.console.plugin:CrmSyncConsolePlugin" in plugin["source"], plugin["source"]
    assert [(app["url_prefix"], app["name"]) for app in plugin["fastapi_apps"]] == [("/crmsync", "crmsync console")]
    views = {(view["destination"], view["href"]) for view in plugin["external_views"]}
    assert views == {("nav", "/crmsync/customers"), ("dag_run", "/crmsync/run/{DAG_ID}/{RUN_ID}")}, views

    # What the DAG processor does, then what the UI lists: the 8 DAGs, from the one-line file, no import error.
    command("airflow", "dags", "reserialize")
    dags = _json_output(command("airflow", "dags", "list", "-o", "json").stdout)
    assert {d["dag_id"] for d in dags} == DAG_IDS and len(dags) == len(DAG_IDS), sorted(d["dag_id"] for d in dags)
    assert {d["fileloc"] for d in dags} == {str(home / "dags" / "crmsync_dags.py")}
    assert _json_output(command("airflow", "dags", "list-import-errors", "-o", "json").stdout) == []
    assert _json_output(command("airflow", "dags", "list-import-errors", "--local", "-o", "json").stdout) == []

    version = command("crmsync", "--version").stdout.strip()
    assert re.fullmatch(rf"crmsync {re.escape(VERSION)} \(tables: schema version \d+\)", version), version

    # A pull through Airflow, against the sandbox and the (emptied, by guide_env) customers database.
    sandbox.control.add_customers([{"Name": 'חברת אלפא בע"מ', "Email": "alpha@example.co.il", "City": "תל אביב",
                                    "TaxID": "012345678"}] + [{"Name": f"Customer {i}"} for i in range(120)])
    crm = sandbox.control.customers()
    assert len(crm) == 121
    result = command("airflow", "dags", "test", "crm_pull_customers", check=False, timeout=600)
    assert result.returncode == 0, f"airflow dags test crm_pull_customers exited {result.returncode}:\n" \
                                   f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    with pg.connect() as conn:
        local = {row[0] for row in conn.execute("SELECT sumit_customer_id FROM sumit_customers").fetchall()}
        count = conn.execute("SELECT count(*) FROM sumit_customers").fetchone()[0]
        run = conn.execute("SELECT operation, status, fetched, created FROM crm_sync_runs ORDER BY id DESC").fetchall()
    assert count == len(crm) and local == {str(c["CustomerID"]) for c in crm}, (count, len(crm))
    assert run[0] == ("pull", "success", len(crm), len(crm)), run

    for what, text in outputs.items():
        assert_no_key(text, f"the output of `{what}`")
        assert str(ROOT) not in text, f"`{what}` mentions the checkout {ROOT}:\n{text[-3000:]}"
