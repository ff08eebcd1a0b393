"""Structure counts of the package (issue 18's before → after): function-level imports of the
package's own modules, signatures over 8 parameters, lines over 110 characters, and the files
outside an analysis's own module, YAML and tests that name it (the places a new analysis touches).

    python benchmarks/structure_counts.py [root]
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGE = "bertviz_landscape"


def python_files(root: Path) -> list[Path]:
    return sorted(p for d in (PACKAGE, "tests", "benchmarks") for p in (root / d).rglob("*.py"))


def function_level_imports(tree: ast.AST) -> list[int]:
    lines = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
                    lines.append(node.lineno)
                elif isinstance(node, ast.Import) and any(a.name.startswith(PACKAGE) for a in node.names):
                    lines.append(node.lineno)
    return sorted(set(lines))


def wide_signatures(tree: ast.AST, limit: int = 8) -> list[str]:
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            a = fn.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
            if len(names) > limit:
                out.append(f"{fn.name}({len(names)})")
    return out


def analysis_touch_points(root: Path) -> dict[str, list[str]]:
    """Per registered analysis: package/conf files other than its module and YAML that name it
    (a string literal equal to the name or '<name>.json', an import of its module, a YAML mention)."""
    names = sorted(p.stem for p in (root / "conf" / "analysis").glob("*.yaml"))
    out: dict[str, list[str]] = {}
    for name in names:
        own = {root / PACKAGE / "analysis" / f"{name}.py", root / "conf" / "analysis" / f"{name}.yaml"}
        hits = []
        for path in sorted((root / PACKAGE).rglob("*.py")):
            if path in own:
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                named = (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and node.value in (name, f"{name}.json", f"analysis={name}")
                ) or (
                    isinstance(node, ast.ImportFrom | ast.Import)
                    and any(
                        m == f"{PACKAGE}.analysis.{name}"
                        for m in [getattr(node, "module", None) or ""] + [a.name for a in node.names]
                        if m
                    )
                    or isinstance(node, ast.ImportFrom)
                    and node.module == f"{PACKAGE}.analysis"
                    and any(a.name == name for a in node.names)
                )
                if named:
                    hits.append(str(path.relative_to(root)))
                    break
        for path in sorted((root / "conf").rglob("*.yaml")):
            if path not in own and re.search(rf"\b(analysis[=/]{name}|{name}\.json)\b", path.read_text()):
                hits.append(str(path.relative_to(root)))
        out[name] = hits
    return out


def main(root: Path) -> None:
    imports = sigs = long_lines = 0
    for path in python_files(root):
        text = path.read_text()
        tree = ast.parse(text)
        if path.is_relative_to(root / PACKAGE):
            imports += len(function_level_imports(tree))
            sigs += len(wide_signatures(tree))
        long_lines += sum(len(line) > 110 for line in text.splitlines())
    touches = analysis_touch_points(root)
    print(f"function-level imports of {PACKAGE} modules (package): {imports}")
    print(f"signatures over 8 parameters (package): {sigs}")
    print(f"lines over 110 characters (package, tests, benchmarks): {long_lines}")
    for name, hits in touches.items():
        print(f"analysis {name}: {len(hits)} other places: {', '.join(hits)}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))
