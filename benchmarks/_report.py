"""What the benchmark scripts share: progress lines and the markdown result file.

Run as ``python benchmarks/NAME.py``, a script finds this module beside it
(``sys.path[0]`` is the ``benchmarks`` folder).
"""

from __future__ import annotations

from pathlib import Path


def log(text: str) -> None:
    """Print a progress line at once."""
    print(text, flush=True)


def publish(text: str, out: Path | None) -> None:
    """Print the report and, when ``out`` is given, write it there (folders created)."""
    print("\n" + text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        log(f"wrote {out}")
