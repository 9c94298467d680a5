"""Check the package layout rules: modules under 600 lines, functions under 100 lines of code.

``python scripts/check_layout.py`` prints every breach and exits 1 if there is any; the
test suite runs the same check (``tests/test_layout.py``). A function's lines of code
leave out its docstring, blank lines and comment-only lines.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_calcite_afm"


def _code_lines(source: str) -> set[int]:
    """Line numbers that hold code (not blank, not only a comment)."""
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def _docstring_lines(node: ast.AST) -> set[int]:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return set()
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            return set(range(body[0].lineno, body[0].end_lineno + 1))
    return set()


def breaches(root: Path = PACKAGE) -> list[str]:
    """Every module over :data:`MAX_MODULE_LINES` and function over :data:`MAX_FUNCTION_LINES`."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        rel = path.relative_to(root.parent)
        n = source.count("\n")
        if n > MAX_MODULE_LINES:
            found.append(f"{rel}: {n} lines (limit {MAX_MODULE_LINES})")
        code = _code_lines(source)
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                span = set(range(node.lineno, node.end_lineno + 1))
                docs = set()
                for inner in ast.walk(node):
                    docs |= _docstring_lines(inner)
                loc = len((span & code) - docs)
                if loc > MAX_FUNCTION_LINES:
                    found.append(
                        f"{rel}:{node.lineno} {node.name}: {loc} lines of code "
                        f"(limit {MAX_FUNCTION_LINES})"
                    )
    return found


def main() -> int:
    found = breaches()
    for line in found:
        print(line)
    print(f"{len(found)} breach(es)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
