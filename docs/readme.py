"""The README's generated sections, made from the code (run after changing options, the HDF5 layout or a
module's docstring):

    python docs/readme.py README.md

(tests/test_config.py fails while any of them is stale).

A section lies between `<!-- BEGIN NAME ...-->` and `<!-- END NAME -->`:
- INPUT REFERENCE: `vmc.input.config.reference_markdown` (the option table);
- HDF5 LAYOUT: `vmc.output.io.layout_markdown`;
- CODE LAYOUT: every folder (its `__init__` docstring) and module of the package (the first paragraph of its
  docstring), entry points and shared modules first, then the layers `LAYERS` from the top.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import vmc
from vmc.input.config import reference_markdown
from vmc.output.io import layout_markdown

#: The layer folders of the package, from the top (the run) down (the model). A module imports only from its own
#: layer, the layers below it and the shared modules of vmc/ (tests/test_docs.py checks it).
LAYERS = ("drivers", "analysis", "input", "output", "mc", "model")
SHARED = ("errors", "version", "parallel")


def _summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("|", "\\|")


def code_layout_markdown() -> str:
    root = Path(vmc.__file__).resolve().parent
    lines = ["| module | holds |", "|---|---|"]
    for path in sorted(root.glob("*.py"), key=lambda p: (p.stem in SHARED, p.name)):
        if path.stem not in ("__init__", "__main__"):
            lines.append(f"| `vmc/{path.name}` | {_summary(path)} |")
    for layer in LAYERS:
        lines.append(f"| **`vmc/{layer}/`** | **{_summary(root / layer / '__init__.py')}** |")
        for path in sorted((root / layer).rglob("*.py")):
            if path.name != "__init__.py":
                lines.append(f"| `{path.relative_to(root.parent).as_posix()}` | {_summary(path)} |")
    return "\n".join(lines) + "\n"


def sections() -> dict[str, str]:
    """Marker name -> the section's current text."""
    return {"INPUT REFERENCE": reference_markdown(), "HDF5 LAYOUT": layout_markdown(),
            "CODE LAYOUT": code_layout_markdown()}


def _span(text: str, name: str) -> tuple[int, int]:
    start = text.index("\n", text.index(f"<!-- BEGIN {name}")) + 1
    return start, text.index(f"<!-- END {name} -->", start)


def section(text: str, name: str) -> str:
    """The text between a generated section's markers."""
    start, end = _span(text, name)
    return text[start:end]


def regenerated(text: str) -> str:
    """`text` with every generated section replaced by its current text."""
    for name, body in sections().items():
        start, end = _span(text, name)
        text = text[:start] + body + text[end:]
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python docs/readme.py", description=__doc__.split("\n\n")[0])
    p.add_argument("readme", type=Path)
    args = p.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    new = regenerated(text)
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
    print(f"{args.readme}: {'updated' if new != text else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
