"""videossl as an installed package, not a clone: the wheel built from pyproject.toml is installed into a fresh virtual
environment and run from an empty folder, so everything it finds (code, recipes, version) comes from the installed
copy. No download: the wheel is built offline with the locked setuptools (requirements.txt) and installed with
``--no-deps``; the fresh environment sees the locked packages through a ``.pth`` file naming this environment's
site-packages, and ``pip check`` then says whether the locked versions satisfy the ranges in pyproject.toml.
About 20-40 s on 2 cores, most of it the two-step pretraining run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import videossl
from videossl import recipes_dir

ROOT = Path(__file__).resolve().parent.parent
# what the wheel is built from (the rest of the clone, tests and docs, is not part of the package)
SOURCES = ("pyproject.toml", "README.md", "MANIFEST.in", "requirements.txt", "videossl")
# pip check in an environment that holds decord 0.6.0 flags it as built for another platform: its wheel says
# "cp36-cp36m" inside although it is published for any Python 3. It imports and decodes (the decoder tests).
KNOWN_PIP_CHECK_LINES = ("decord 0.6.0 is not supported on this platform",)


def _shipped_recipes() -> set[str]:
    root = recipes_dir()
    return {p.relative_to(root).as_posix() for p in root.rglob("*.yaml")}


def _run(args: list, cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the wheel offline and install it alone into a new virtual environment; return its paths."""
    import setuptools
    from packaging.version import Version

    if Version(setuptools.__version__) < Version("70.1"):
        pytest.fail(f"setuptools {setuptools.__version__} cannot build the wheel offline (needs >= 70.1, pinned in "
                    f"requirements.txt): run `make venv`")
    base = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", OMP_NUM_THREADS="1",
               VIDEOSSL_CACHE=str(base / "cache"))

    # a copy of the sources: pip builds in the source tree (build/, *.egg-info), and the clone is shared
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "-w", base / "dist", src], cwd=base, env=env)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "BuildBackendWarning" not in build.stderr, build.stderr  # e.g. setuptools' "package would be ignored"
    wheel = next((base / "dist").glob("videossl-*.whl"))

    # a fresh environment that sees the locked packages after its own site-packages (a .pth line is a path, the
    # locked environment's own .pth files, among them videossl's editable install, are not read)
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base, env=env)
    locked = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site.stdout.strip()) / "_videossl_locked_env.pth").write_text("\n".join(locked) + "\n")
    # --ignore-installed: the locked environment's videossl (editable) is visible but is neither used nor touched
    install = _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", wheel],
                   cwd=base, env=env)
    assert install.returncode == 0, install.stdout + install.stderr
    work = base / "work"  # an empty folder: nothing of the clone is reachable from here
    work.mkdir()
    return {"wheel": wheel, "bin": env_dir / "bin", "python": python, "work": work, "env": env,
            "site": Path(site.stdout.strip())}


def test_the_wheel_ships_every_recipe(installed):
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = {n.removeprefix("videossl/recipes/") for n in wheel.namelist()
                 if n.startswith("videossl/recipes/") and n.endswith(".yaml")}
    assert names == _shipped_recipes() and len(names) > 50


def test_the_installed_command_runs_from_a_fresh_environment(installed):
    bin_dir, work, env = installed["bin"], installed["work"], installed["env"]
    check = _run([installed["python"], "-m", "pip", "check"], cwd=work, env=env)
    problems = [line for line in check.stdout.splitlines()
                if line.strip() and line not in KNOWN_PIP_CHECK_LINES and line != "No broken requirements found."]
    assert not problems, "the locked environment does not satisfy pyproject.toml's ranges:\n" + check.stdout

    where = _run([installed["python"], "-c", "import videossl; print(videossl.__file__); print(videossl.recipes_dir())"],
                 cwd=work, env=env)
    module, recipes = where.stdout.split()
    assert Path(module).is_relative_to(installed["site"]) and Path(recipes).is_relative_to(installed["site"]), \
        where.stdout + where.stderr

    helped = _run([bin_dir / "videossl", "--help"], cwd=work, env=env)
    assert helped.returncode == 0 and "pretrain" in helped.stdout, helped.stderr
    version = _run([bin_dir / "videossl", "--version"], cwd=work, env=env)
    assert version.returncode == 0 and version.stdout.strip() == f"videossl {videossl.__version__}", version
    listed = _run([bin_dir / "videossl", "list", "recipes", "--brief"], cwd=work, env=env)
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines()}
    assert names == {name.removesuffix(".yaml") for name in _shipped_recipes()}


def test_the_installed_command_pretrains_a_shipped_recipe(installed):
    """`videossl pretrain simclr_synthetic_tiny3d` (by name: found among the installed recipes), two tiny steps."""
    tiny = ["data.synthetic.num_pool=8", "data.synthetic.num_train=12", "data.synthetic.num_test=12",
            "data.synthetic.size=32", "data.crop_size=32", "data.num_frames=4", "data.frame_stride=1",
            "data.num_workers=0", "train.batch_size=4", "train.max_steps=2", "train.epochs=1", "train.plots=false",
            "train.progress=false", "train.run_dir=run"]
    run = _run([installed["bin"] / "videossl", "pretrain", "simclr_synthetic_tiny3d", *tiny], cwd=installed["work"],
               env=installed["env"], timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (installed["work"] / "run" / "encoder.pt").is_file()


def test_the_lock_lies_inside_the_declared_ranges():
    """Every pin of requirements.txt is declared in pyproject.toml (dependencies or an extra) and inside its range,
    and every declared package that the lock leaves to the resolver is installed inside its range."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared: dict[str, Requirement] = {}
    for line in project["dependencies"] + [r for group in project["optional-dependencies"].values() for r in group]:
        req = Requirement(line)
        if req.name != "videossl":  # the `all` extra names the others
            declared[req.name.lower()] = req
    pins = [Requirement(line.split("#")[0]) for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.split("#")[0].strip()]
    for pin in pins:
        (version,) = [s.version for s in pin.specifier]
        assert pin.name.lower() in declared, f"{pin.name} is locked in requirements.txt but not in pyproject.toml"
        assert declared[pin.name.lower()].specifier.contains(version, prereleases=True), \
            f"the lock {pin} is outside pyproject.toml's {declared[pin.name.lower()]}"
    locked = {pin.name.lower() for pin in pins}
    for name, req in declared.items():
        if name not in locked:
            assert req.specifier.contains(metadata.version(name), prereleases=True), (name, metadata.version(name))
