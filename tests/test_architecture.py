"""The layout's rules, checked: layers point down, and importing learnlaw changes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    """import-linter (pyproject.toml): the layers only point down."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "broken" in result.stdout and " 0 broken" in result.stdout


PROBE = """
import importlib, json, os, pkgutil, sys
import matplotlib
env = dict(os.environ)
backend = dict.__getitem__(matplotlib.rcParams, "backend")
import learnlaw
names = sorted(m.name for m in pkgutil.walk_packages(learnlaw.__path__, "learnlaw."))
for name in names:
    importlib.import_module(name)
print(json.dumps({
    "modules": len(names),
    "env_changed": sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)),
    "backend_changed": dict.__getitem__(matplotlib.rcParams, "backend") != backend,
    "pyplot_loaded": "matplotlib.pyplot" in sys.modules,
}))
"""


def test_importing_every_module_changes_no_environment_and_no_backend():
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] > 40  # every module was imported, the CLI's included
    assert report["env_changed"] == []
    assert not report["backend_changed"] and not report["pyplot_loaded"]


def test_no_import_cycles_between_modules():
    """Layers forbid upward imports; this also forbids cycles inside one layer (a module
    graph that is a DAG), with grimp, the graph library under import-linter."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("learnlaw")
    modules = sorted(graph.modules)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycle: list[str] = []

    def visit(m: str, path: list[str]) -> bool:
        state[m] = 1
        for n in sorted(graph.find_modules_directly_imported_by(m)):
            if state.get(n) == 1:
                cycle.extend([*path[path.index(n) :], m, n] if n in path else [m, n])
                return True
            if n not in state and visit(n, [*path, m]):
                return True
        state[m] = 2
        return False

    for m in modules:
        if m not in state and visit(m, []):
            break
    assert not cycle, " -> ".join(cycle)
