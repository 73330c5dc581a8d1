"""Static check of an answer cell: no credit for calling the reference or reaching around the sandbox.

The package holds the reference answer of every exercise (``rlcourse.model.policy.token_logprobs``
…), so an answer could simply call it. The grader parses each answer cell (``ast``) and
flags, for that exercise only:

- an import outside a short allow-list (torch, math, numpy, …; ``rlcourse.rl.loops`` where the
  exercise is to configure it), and any use of the name ``rlcourse``;
- any use of the exercise's reference names through an attribute (``policy.token_logprobs``)
  or an import;
- the escape hatches that reach code or files indirectly: ``__import__``, ``importlib``,
  ``exec``, ``eval``, ``compile``, ``open``, ``globals``, ``vars``, ``get_ipython``, ``sys``,
  ``os``, ``subprocess``, frame/closure internals.

It is a courtesy flag for honest mistakes, not the defence: the sandbox (docs/sandbox.md) is.
"""

from __future__ import annotations

import ast

from rlcourse.grading.spec import Exercise

ALLOWED_IMPORTS = ("torch", "math", "numpy", "itertools", "functools", "collections", "dataclasses", "typing")
FORBIDDEN_NAMES = {
    "__import__", "importlib", "exec", "eval", "compile", "open", "globals", "vars", "locals", "get_ipython",
    "sys", "os", "subprocess", "builtins", "__builtins__", "breakpoint", "input", "setattr", "delattr",
    "rlcourse", "_rlc_kernel", "safetensors", "pathlib", "shutil", "socket", "ctypes", "pickle", "signal",
}
FORBIDDEN_ATTRIBUTES = {
    "__globals__", "__closure__", "__wrapped__", "__code__", "__dict__", "__subclasses__", "__builtins__",
    "__getattribute__", "f_back", "f_globals", "f_locals", "gi_frame", "sys", "os", "importlib", "builtins", "load",
    "load_file", "from_pretrained", "system", "__import__",
}


def answer_problems(source: str, ex: Exercise) -> list[str]:
    """What in ``source`` an answer to ``ex`` may not do, one sentence each (empty: fine)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return [f"the answer cell is not valid Python (line {err.lineno}: {err.msg})"]
    allowed = ALLOWED_IMPORTS + ex.allowed_imports
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "rlcourse":
                modules = [f"{node.module}.{a.name}" for a in node.names]  # `from rlcourse.rl import loops`
            for module in modules:
                if not any(module == a or module.startswith(a + ".") for a in allowed):
                    problems.append(f"imports {module}, and answers may import only {', '.join(allowed)}")
            for alias in node.names:
                if alias.name in ex.forbidden or alias.name == "*":
                    problems.append(f"imports {alias.name}, the reference answer of this exercise")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            if node.id == "rlcourse" and "rlcourse.rl.loops" in allowed and _is_loops_access(tree, node):
                continue
            problems.append(f"uses {node.id}, which answers may not use")
        elif isinstance(node, ast.Attribute):
            if node.attr in ex.forbidden:
                problems.append(f"uses .{node.attr}, the reference answer of this exercise")
            elif node.attr in FORBIDDEN_ATTRIBUTES:
                problems.append(f"uses .{node.attr}, which answers may not use")
    return list(dict.fromkeys(problems))  # unique, in order


def _is_loops_access(tree: ast.AST, name: ast.Name) -> bool:
    """True when ``name`` (rlcourse) appears only as ``rlcourse.rl.loops``."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    rl = parents.get(name)
    loops = parents.get(rl)
    return (isinstance(rl, ast.Attribute) and rl.value is name and rl.attr == "rl"
            and isinstance(loops, ast.Attribute) and loops.value is rl and loops.attr == "loops")
