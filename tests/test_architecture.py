"""The package's layers (docs/architecture.md): every import inside ``rlcourse/`` points down or sideways.

Read from the source with ``ast``, so an import hidden in a function body counts as much as one at
the top of a module, and nothing has to be imported to check it.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rlcourse"
# Bottom to top. A module may import from its own layer or any layer below it, never above.
LAYERS = ("utils", "world", "model", "reward", "rl", "classroom", "grading", "cli")


def layer_of(module: str) -> str | None:
    """``rlcourse.rl.loops`` -> ``"rl"``; ``rlcourse`` itself (the facade) -> ``None``."""
    parts = module.split(".")
    if parts[0] != "rlcourse":
        raise ValueError(f"{module} is not in the package")
    if len(parts) == 1:
        return None
    if parts[1] not in LAYERS:
        raise ValueError(f"rlcourse.{parts[1]} is in no layer: add it to LAYERS and docs/architecture.md")
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_modules(source: str, importer: str) -> list[tuple[int, str]]:
    """(line, module) of every rlcourse import in ``source``, at any depth; ``from a.b import c`` gives
    ``a.b.c`` when c is a module of the package, else ``a.b``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "rlcourse"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, f"relative import in {importer}"))
                continue
            if (node.module or "").split(".")[0] != "rlcourse":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists() or \
                    (PACKAGE.parent / Path(*sub.split("."))).is_dir()
                found.append((node.lineno, sub if is_module else node.module))
    return found


def violations(sources: dict[str, str]) -> list[str]:
    """One sentence per import that points up a layer, or reaches the facade from inside the package."""
    problems = []
    for importer, source in sources.items():
        own = layer_of(importer)
        for line, target in imported_modules(source, importer):
            if target.startswith("relative import"):
                problems.append(f"{importer}:{line}: use an absolute import (rlcourse.<layer>.<module>)")
                continue
            theirs = layer_of(target)
            if own is None:  # the facade rlcourse/__init__.py: lazy re-exports only, see test below
                continue
            if theirs is None:
                problems.append(f"{importer}:{line} imports the facade `rlcourse`: import from the module's home")
            elif LAYERS.index(theirs) > LAYERS.index(own):
                problems.append(f"{importer}:{line} ({own}) imports {target} ({theirs}), a layer above it")
    return problems


def import_cycles(sources: dict[str, str]) -> list[list[str]]:
    """Cycles in the module graph (module-level and function-level imports alike)."""
    graph = {m: {t for _, t in imported_modules(s, m) if t in sources and t != m} for m, s in sources.items()}
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return {module_name(p): p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_import_points_down_or_sideways(sources):
    assert violations(sources) == []


def test_no_import_cycles(sources):
    assert import_cycles({m: s for m, s in sources.items() if m != "rlcourse"}) == []


def test_every_module_sits_in_a_layer(sources):
    for module in sources:
        if module != "rlcourse":
            layer_of(module)  # raises for a folder no layer names


def test_the_facade_imports_only_the_claims_helper_eagerly(sources):
    """``import rlcourse`` loads one light module; load_policy and setup come lazily (PEP 562)."""
    tree = ast.parse(sources["rlcourse"])
    eager = [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("rlcourse")]
    assert eager == ["rlcourse.classroom.claims"]
    assert imported_modules(sources["rlcourse.classroom.claims"], "rlcourse.classroom.claims") == []


@pytest.mark.parametrize("importer, source, expected", [
    ("rlcourse.world.grammar", "from rlcourse.rl import loops", "a layer above"),
    ("rlcourse.model.policy", "def f():\n    from rlcourse.reward import reward_model\n", "a layer above"),
    ("rlcourse.rl.losses", "import rlcourse.classroom.plotting", "a layer above"),
    ("rlcourse.reward.verifiers", "from rlcourse import expect", "facade"),
    ("rlcourse.rl.loops", "from . import losses", "absolute import"),
])
def test_the_checker_catches_upward_imports(importer, source, expected):
    (problem,) = violations({importer: source})
    assert expected in problem


def test_the_checker_allows_downward_and_sideways_imports():
    assert violations({"rlcourse.rl.loops": "from rlcourse.rl import losses\nfrom rlcourse.world import rewards\n"
                                            "from rlcourse.utils import check\nimport torch"}) == []


def test_the_cycle_finder_finds_a_cycle():
    sources = {"rlcourse.classroom.quiz": "from rlcourse.classroom import quizbank",
               "rlcourse.classroom.quizbank": "def f():\n    from rlcourse.classroom.quiz import Quiz\n"}
    assert import_cycles(sources) == [["rlcourse.classroom.quiz", "rlcourse.classroom.quizbank",
                                       "rlcourse.classroom.quiz"]]
