"""The built wheel carries what ``smc build`` needs: templates and schemas (hatch maps them to
``smc/_data/``). Built for real, installed into a fresh virtual environment, and run there on
an example, away from the source tree."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The fresh venv must not import this checkout through the caller's PYTHONPATH.
    env = None
    if command[0] != sys.executable:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The ``sdist`` and the ``wheel`` of the checkout, built for real (in one run of
    ``python -m build``, for both tests); kind -> path."""
    tmp_path = tmp_path_factory.mktemp("build")
    dist = tmp_path / "dist"
    command = [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist)]
    if importlib.util.find_spec("hatchling") is not None:
        command.append("--no-isolation")  # the backend is here already: no download needed
    run([*command, str(PROJECT_ROOT)], cwd=tmp_path)
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    assert sorted(dist.iterdir()) == sorted([sdist, wheel])
    return {"sdist": sdist, "wheel": wheel}


@pytest.mark.slow
def test_sdist_ships_the_examples_whole_and_the_licence(dists: dict[str, Path]) -> None:
    sdist = dists["sdist"]
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "smc/cli/__init__.py"} <= names
    assert {"templates/machine.py.jinja", "schemas/machine.schema.json"} <= names
    for readme in (PROJECT_ROOT / "examples").glob("*/README.md"):
        folder = readme.parent
        shipped = {n for n in names if n.startswith(f"examples/{folder.name}/")}
        expected = {f"examples/{folder.name}/{p.name}" for p in folder.iterdir() if p.is_file()}
        assert shipped == expected, folder.name
        assert any(n.endswith(".yaml") for n in shipped), folder.name
    # only the project's own top-level folders, no stray README.md from elsewhere
    assert {n.split("/", 1)[0] for n in names if "/" in n} == {
        "smc",
        "templates",
        "schemas",
        "examples",
        "docs",
    }


@pytest.mark.slow
def test_wheel_installs_and_builds_an_example(tmp_path: Path, dists: dict[str, Path]) -> None:
    wheel = dists["wheel"]
    assert wheel.name.startswith("smc_compiler-") and wheel.suffix == ".whl"

    names = set(zipfile.ZipFile(wheel).namelist())
    assert "smc/_data/templates/machine.py.jinja" in names
    assert "smc/_data/templates/__init__.py.jinja" in names
    assert "smc/_data/schemas/machine.schema.json" in names
    assert "smc/machine.py" in names and "smc/py.typed" in names
    # the web monitor's page: every asset inside the wheel (no CDN)
    for asset in ("index.html", "app.js", "app.css", "favicon.svg"):
        assert f"smc/ui/static/{asset}" in names, asset
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)

    # A fresh, isolated environment (also when the tests themselves run in a venv): the wheel
    # with the dependencies it declares, at the locked versions (from pip's cache or the
    # index), so a dependency missing from the metadata fails here.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*install, "-c", str(PROJECT_ROOT / "constraints.txt"), str(wheel)], cwd=tmp_path)

    work = tmp_path / "work"
    shutil.copytree(PROJECT_ROOT / "examples" / "simple_worker", work / "machines")
    where = run(
        [
            str(python),
            "-c",
            "import smc, smc.compiler.resources as r; "
            "print(smc.__file__); print(r.data_dir('templates')); print(r.data_dir('schemas'))",
        ],
        cwd=work,
    ).stdout.splitlines()
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    assert all(Path(line).is_relative_to(site_packages) for line in where), where
    assert where[1].endswith("smc/_data/templates")

    result = run([str(venv / "bin" / "smc"), "build", "machines", "-o", "out"], cwd=work)
    assert "1 machine(s)" in result.stderr
    module = work / "out" / "simple_worker.py"
    assert module.read_text().startswith(
        "# Code generated by smc from machines/simple_worker.yaml. DO NOT EDIT.\n"
    )
    # the installed wheel generates exactly what the source checkout generates
    run([sys.executable, "-m", "smc", "build", "machines", "-o", "from_source"], cwd=work)
    assert module.read_bytes() == (work / "from_source" / "simple_worker.py").read_bytes()
    run([str(venv / "bin" / "smc"), "build", "machines", "-o", "out", "--check"], cwd=work)
    imported = run(
        [str(python), "-c", "from out import SimpleWorker; print(SimpleWorker().initialized())"],
        cwd=work,
    )
    assert imported.stdout.strip() == "waiting"
