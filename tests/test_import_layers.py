"""The layering contract (docs/development.md): each floor imports only the floors below it, and the
package's modules form no import cycle — function-level imports included (a cycle hidden inside a
function is still a cycle), and no import of the package's own modules sits inside a function
unless the line says why (an optional dependency or start-up time)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "bertviz_landscape"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# the floors, lowest first: a module's floor is the first part of its name under the package
# (bertviz_landscape.engine.sweep -> engine; bertviz_landscape.api -> api) — its directory says it,
# no list can misplace it
FLOORS: list[str] = [
    "algebra",  # float64 vector maths over dicts of tensors: one summation order
    "contracts",  # file formats and their owners: errors, atomic writes, run/results directories
    "training",  # data, models, callbacks, train
    "engine",  # typed requests, directions, grid, evaluator, shards, surface, sweep, replay
    "analysis",  # the registry, one module per analysis, measures/
    "plots",  # one module per figure kind
    "publish",  # the report, the one W&B writer
    "pipeline",  # the stage runner and the paper's plan
    "cli",  # the commands: Hydra composes here and only here
    "api",  # the Python API
]
# why a package import may sit inside a function: the comment on its line names one of these
LAZY_REASONS = ("optional dependency", "start-up time")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def unit_of(module: str) -> str:
    """The floor package holding `module` ("" for the package's own __init__)."""
    rest = module.split(".")[1:]
    return rest[0] if rest else ""


def floor_of(module: str) -> int:
    unit = unit_of(module)
    return FLOORS.index(unit) if unit in FLOORS else -1  # -1: the package's own __init__


def floor_name(module: str) -> str:
    return FLOORS[floor_of(module)] if floor_of(module) >= 0 else "no floor"


def imports_of(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported package module, line, inside a function) for each import of the package."""
    tree = ast.parse(path.read_text())
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            inside.update(id(n) for n in ast.walk(fn) if n is not fn)
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from pkg import submodule` imports the submodule; `from mod import name` the module
            targets = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            ]
        for target in targets:
            if target.startswith(PACKAGE):
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                found.append((target, node.lineno, id(node) in inside))
    return list(dict.fromkeys(found))


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: {t for t, _, _ in imports_of(p, known) if t != m} for m, p in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a list of modules, first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_every_module_has_a_floor():
    unplaced = sorted(m for m in modules() if m != PACKAGE and unit_of(m) not in FLOORS)
    assert not unplaced, f"modules on no floor (move them into a floor's directory): {unplaced}"


def test_no_import_from_a_higher_floor():
    mods = modules()
    known = set(mods)
    upward = []
    for m, path in mods.items():
        for target, line, _ in imports_of(path, known):
            if floor_of(target) > floor_of(m):
                upward.append(
                    f"{path.relative_to(ROOT.parent)}:{line} ({floor_name(m)}) imports {target} "
                    f"({floor_name(target)})"
                )
    assert not upward, "\n".join(dict.fromkeys(upward))


def test_no_import_cycle_between_modules():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_between_units():
    """Packages too: plots -> report -> plots is a cycle even when no two modules form one."""
    units: dict[str, set[str]] = {}
    for m, targets in graph().items():
        units.setdefault(unit_of(m), set()).update(unit_of(t) for t in targets if unit_of(t) != unit_of(m))
    cycle = find_cycle(units)
    assert cycle is None, "import cycle between units: " + " -> ".join(cycle)


def test_function_level_package_imports_say_why():
    mods = modules()
    known = set(mods)
    hidden = []
    for path in mods.values():
        lines = path.read_text().splitlines()
        for _, line, inside in imports_of(path, known):
            if inside and not any(reason in lines[line - 1] for reason in LAZY_REASONS):
                hidden.append(f"{path.relative_to(ROOT.parent)}:{line}: {lines[line - 1].strip()}")
    assert not hidden, "package imports inside functions (move them to the top):\n" + "\n".join(
        dict.fromkeys(hidden)
    )


@pytest.mark.parametrize(
    "edges, cyclic",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
        ({"a": {"a2"}, "a2": set(), "b": {"a"}}, False),
    ],
)
def test_the_cycle_finder_finds_cycles(edges, cyclic):
    assert (find_cycle(edges) is not None) == cyclic


def test_the_contract_sees_function_level_imports(tmp_path):
    """An import hidden in a function is an edge of the graph (the check can fail)."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from bertviz_landscape.plots import style\n")
    found = imports_of(source, {"bertviz_landscape.plots", "bertviz_landscape.plots.style"})
    assert found == [("bertviz_landscape.plots.style", 2, True)]


def hydra_imports(path: Path) -> list[int]:
    """The lines of `path` that import Hydra (``import hydra``, ``from hydra... import``), in a
    function or not."""
    tree = ast.parse(path.read_text())
    lines = []
    for node in ast.walk(tree):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
            else []
        )
        if any(n == "hydra" or n.startswith("hydra.") for n in names):
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_cli_floor_imports_hydra():
    """Hydra composes configs on the cli floor (cli/compose.py, the commands) and nowhere below:
    the engine and the analyses take typed requests, whose defaults are the YAML's."""
    found = [
        f"{path.relative_to(ROOT.parent)}:{line}"
        for m, path in modules().items()
        if unit_of(m) not in ("cli", "api")
        for line in hydra_imports(path)
    ]
    assert not found, "Hydra imported below the cli floor:\n" + "\n".join(found)


def test_the_hydra_check_sees_function_level_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from hydra.core.global_hydra import GlobalHydra\n\nimport hydra\n")
    assert hydra_imports(source) == [2, 4]
