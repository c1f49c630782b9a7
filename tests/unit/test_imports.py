"""The package reads one way down: no import cycle between modules or between
packages, and imports at the top of each module (a function-local import only
where it saves measured start-up time, listed here with its reason)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "qmpcompat"

# module -> imported module: the function-local imports allowed, each for its start-up cost
LOCAL_ALLOWED = {
    # hypothesis costs about 0.45 s of the 0.8 s of imports every qmpcompat command would pay
    ("qmpcompat.commands.hunt", "qmpcompat.hunt.run"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> Iterator[tuple[str, bool, bool]]:
    """(module imported, inside a function, under TYPE_CHECKING) for each import."""
    tree = ast.parse(path.read_text())

    def walk(node: ast.AST, in_func: bool, typing_only: bool) -> Iterator[tuple[str, bool, bool]]:
        for child in ast.iter_child_nodes(node):
            func = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            guarded = typing_only or (isinstance(child, ast.If)
                                      and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                yield child.module, in_func, typing_only
                for alias in child.names:  # ``from pkg import module``
                    yield f"{child.module}.{alias.name}", in_func, typing_only
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, in_func, typing_only
            yield from walk(child, func, guarded)

    yield from walk(tree, False, False)


def _graph(known: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target, _local, typing_only in _imports(path):
            if target in known and target != name and not typing_only:
                graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _package_of(module: str, depth: int, known: dict[str, Path]) -> str:
    """The package of ``module`` at most ``depth`` levels below qmpcompat (its own
    name for a top-level module such as ``qmpcompat.types``)."""
    parts = module.split(".")
    if known[module].name != "__init__.py":
        parts = parts[:-1] if len(parts) > 2 else parts
    return ".".join(parts[:depth + 1])


def test_no_cycle_between_modules() -> None:
    graph = _graph(_modules())
    # a package's __init__ may re-export its own modules: that edge is not layering
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_cycle_between_packages() -> None:
    known = _modules()
    graph = _graph(known)
    for depth in (1, 2):
        packages: dict[str, set[str]] = {}
        for name, targets in graph.items():
            src = _package_of(name, depth, known)
            packages.setdefault(src, set()).update(
                p for t in targets if (p := _package_of(t, depth, known)) != src
                and not p.startswith(src + "."))
        found = _cycle(packages)
        assert found is None, f"packages at depth {depth}: " + " -> ".join(found or [])


def test_no_function_local_imports() -> None:
    local = {(name, target) for name, path in _modules().items()
             for target, in_func, _typing in _imports(path) if in_func}
    allowed = {(n, t) for n, t in local
               if any(n == a_n and (t == a_t or t.startswith(a_t + ".")) for a_n, a_t in LOCAL_ALLOWED)}
    assert not local - allowed, sorted(local - allowed)


def test_the_cli_starts_without_the_hunts_imports() -> None:
    """What LOCAL_ALLOWED saves is really saved: loading the command line (every
    command's parser) imports no hypothesis."""
    code = "import sys, qmpcompat.cli; print(any(m.split('.')[0] == 'hypothesis' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE.parent, check=True).stdout
    assert out.strip() == "False"


def test_the_checks_can_fail() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
