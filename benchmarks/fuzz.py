"""Benchmark: fuzz the readers with mutated copies of small real files.

Every reader (``read_stack`` and ``list_channels``) is fed copies of small files from
``shared/data/afm-real`` (plus a .npy, an .npz and an ImageJ TIFF made from one of
them) with byte flips, insertions, deletions, truncations and edits of the numbers in
their headers. Each read runs in a worker process with its address space capped
(``RLIMIT_AS``, 3 GB) and a time limit; the outcome of each read is one of

- ``good``: a sane ``AFMStack`` (float32 ``(frames, rows, cols)`` with frames of at
  least 8 x 8 pixels, a finite pixel size within the readers' bounds, a recorded pixel
  in every frame) or a non-empty list of channel names;
- ``error``: a ``CalciteAFMError`` naming the file;
- ``fault``: anything else: another exception, a timeout, a crash of the worker, a
  resident size over ``--memory-mb``, a ``MemoryError`` under the error (the reader
  allocated before checking), or a result that is not sane.

Counts are printed per format; the faults are listed with their mutations, so that each
can be replayed. The test suite runs the same machinery (``tests/io/test_fuzz.py``) on a
fixed, small set of hypothesis examples.

    python benchmarks/fuzz.py [--n 2000] [--seed 1] [--formats spm,ibw] [--timeout 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: One small real file per reader (in ``shared/data/afm-real``); ``derived:`` files are
#: written by :func:`make_sources` from the TopoStats sample.
SOURCES: dict[str, str] = {
    "spm": "topostats_old_bruker.002",
    "spm-2ch": "nanoafmr_kpg20080408.007",
    "ibw": "nanoafmr_AR_20211011.ibw",
    "gwy": "synthetic_topostats_orientation_landscape.gwy",
    "jpk": "afmreader_sample_0.jpk",
    "h5-jpk": "afmreader_sample_0.h5-jpk",
    "asd": "playnano_asd_sample_0.asd",
    "stp": "afmreader_sample_0.stp",
    "top": "afmreader_sample_0.top",
    "topostats": "afmreader_sample_0_1.topostats",
    "tiff": "tono_float32_height_m.tiff",
    "park-tiff": "nanoafmr_Park_20210916_034.tiff",
    "imagej-tiff": "derived:movie.tif",
    "npy": "derived:heights.npy",
    "npz": "derived:heights.npz",
    # through Gwyddion's converter (the optional gwyddion extra; without it every read
    # is a clean error that says how to install it)
    "nid": "nanoafmr_NanoSurf_20160301.nid",
    "mdt": "scifi_test_mdt.mdt",
}

#: Values that header edits write: sizes that overflow, vanish or turn negative.
INTS = [0, 1, -1, 2, 7, 8, 255, 65535, 65536, 2**31 - 1, -(2**31), 2**32 - 1, 2**32, 10**11]
FLOATS = [0.0, -1.0, 1e-300, 1e300, float("inf"), float("nan"), 1e-9, 1e9]
KINDS = ("flip", "insert", "delete", "truncate", "number", "int32", "float64")
HEADER = 4096  # bytes at the start of a file where most edits land
# What a sane result holds (the bounds of napari_calcite_afm.io._limits, kept here so
# that the harness judges any version of the readers by the same rule).
MIN_FRAME_PIXELS = 8
MIN_PIXEL_SIZE_NM, MAX_PIXEL_SIZE_NM = 1e-3, 1e6


def find_real_data() -> Path | None:
    """``shared/data/afm-real`` beside the repository (or ``$CALCITE_AFM_REAL_DATA``)."""
    here = ROOT.parent / "shared" / "data" / "afm-real"
    if here.is_dir():
        return here
    env = os.environ.get("CALCITE_AFM_REAL_DATA")
    return Path(env) if env and Path(env).is_dir() else None


def make_sources(real: Path, work: Path) -> dict[str, Path]:
    """The source file of each format: real files, and the derived ones written to
    ``work`` (a .npy, an .npz with pixel size and times, an ImageJ TIFF of 3 frames)."""
    import warnings

    import numpy as np

    from napari_calcite_afm.io import read_stack, write_tiff

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = read_stack(real / SOURCES["topostats"])
    frame = base.heights[0]
    movie = np.stack([frame, frame + 1.0, frame + 2.0])
    np.save(work / "heights.npy", movie)
    np.savez(
        work / "heights.npz",
        heights=movie,
        pixel_size_nm=base.pixel_size_nm,
        frame_times_s=np.arange(3.0) * 5,
    )
    write_tiff(work / "movie.tif", movie, base.pixel_size_nm, frame_interval_s=5.0)
    out = {}
    for fmt, name in SOURCES.items():
        path = work / name.split(":", 1)[1] if name.startswith("derived:") else real / name
        if path.is_file():
            out[fmt] = path
    return out


# ----------------------------------------------------------------------------- mutations
def apply_edit(data: bytes, edit: tuple) -> bytes:
    """One edit ``(kind, header, pos, value)`` applied to ``data``.

    ``pos`` is taken modulo the first :data:`HEADER` bytes (``header`` True) or the
    whole file; ``value`` is an XOR byte (flip), bytes (insert), a count (delete), an
    index into :data:`INTS` (number, int32) or :data:`FLOATS` (float64).

    >>> apply_edit(b"size: 512 end", ("number", True, 0, 4))
    b'size: 255 end'
    >>> apply_edit(b"abcdef", ("delete", False, 2, 3))
    b'abf'
    """
    kind, header, pos, value = edit
    if not data:
        return data
    span = min(len(data), HEADER) if header else len(data)
    p = pos % span
    if kind == "flip":
        return data[:p] + bytes([data[p] ^ (value % 255 + 1)]) + data[p + 1 :]
    if kind == "insert":
        return data[:p] + bytes(value) + data[p:]
    if kind == "delete":
        return data[:p] + data[p + max(1, value) :]
    if kind == "truncate":
        return data[: max(1, p)]
    if kind == "number":
        numbers = list(re.finditer(rb"\d+", data[: 1 << 16]))
        if not numbers:
            return data
        m = numbers[pos % len(numbers)]
        return data[: m.start()] + str(INTS[value % len(INTS)]).encode() + data[m.end() :]
    if kind == "int32":
        v = INTS[value % len(INTS)] & 0xFFFFFFFF
        return data[:p] + struct.pack("<I", v) + data[p + 4 :]
    if kind == "float64":
        return data[:p] + struct.pack("<d", FLOATS[value % len(FLOATS)]) + data[p + 8 :]
    raise ValueError(f"unknown edit {kind!r}")


def mutate(data: bytes, edits: list[tuple]) -> bytes:
    """``data`` with each edit of ``edits`` applied in turn."""
    for edit in edits:
        data = apply_edit(data, edit)
    return data


def random_edits(rng: random.Random) -> list[tuple]:
    """One to three random edits (7 in 10 within the header)."""
    edits = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.choice(KINDS)
        value = {
            "insert": lambda: rng.randbytes(rng.randint(1, 64)),
            "delete": lambda: rng.randint(1, 64),
        }.get(kind, lambda: rng.randrange(256))()
        edits.append((kind, rng.random() < 0.7, rng.randrange(1 << 31), value))
    return edits


# ----------------------------------------------------------------------------- worker
class ReadWorker:
    """A child process that reads files on request under an address-space limit.

    ``run(op, path)`` (``op`` "read" or "list") returns a dict: ``outcome`` ("good",
    "error" or "fault"), ``detail``, ``seconds`` and ``rss_mb`` (the child's peak
    resident size). A read past ``timeout`` seconds, or a dead child, is a fault and the
    child is replaced; so is a child whose peak resident size passed ``memory_mb``.
    """

    def __init__(self, timeout: float = 30.0, memory_mb: int = 1024, limit_mb: int = 3072):
        self.timeout, self.memory_mb, self.limit_mb = timeout, memory_mb, limit_mb
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])
        )
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(self.limit_mb)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        ready = self._answer(120.0)
        if ready is None or ready.get("ready") is not True:
            self.close()
            raise RuntimeError("the fuzz worker did not start")

    def _answer(self, timeout: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def run(self, op: str, path: Path | str) -> dict:
        """Read ``path`` (``op``: "read" or "list") in the child; see the class.

        ``op`` "sleep" makes the child sleep ``path`` seconds (a stand-in for a hang).
        """
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        t = time.perf_counter()
        try:
            self.proc.stdin.write(f"{op}\t{path}\n".encode())
            self.proc.stdin.flush()
            answer = self._answer(self.timeout)
        except (BrokenPipeError, ValueError):
            answer = None
        seconds = time.perf_counter() - t
        if answer is None:
            timed_out = self.proc.poll() is None
            self.close()
            detail = f"timeout after {self.timeout:g} s" if timed_out else "the worker died"
            return {"outcome": "fault", "detail": detail, "seconds": seconds, "rss_mb": None}
        answer["seconds"] = seconds
        if answer["rss_mb"] > self.memory_mb:
            self.close()  # a fresh child measures the next read from its own baseline
            if answer["outcome"] != "fault":
                answer["detail"] = f"memory: {answer['rss_mb']} MB ({answer['detail']})"
                answer["outcome"] = "fault"
        return answer

    def close(self) -> None:
        """Stop the child (it is ours: killed by its handle)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()
        self.proc = None


def check_result(op: str, result) -> str | None:
    """Why a successful read is not sane (None where it is)."""
    import math

    import numpy as np

    if op == "list":
        ok = isinstance(result, list) and result and all(isinstance(c, str) and c for c in result)
        return None if ok else f"channel list {result!r}"
    h, px = result.heights, result.pixel_size_nm
    if h.dtype != np.float32 or h.ndim != 3 or h.shape[0] < 1:
        return f"heights {h.dtype} {h.shape}"
    if min(h.shape[1:]) < MIN_FRAME_PIXELS:
        return f"frames of {h.shape[1]} x {h.shape[2]} pixels"
    if not (math.isfinite(px) and px > 0):
        return f"pixel size {px!r}"
    if not result.metadata.get("pixel_size_assumed") and not (
        MIN_PIXEL_SIZE_NM <= px <= MAX_PIXEL_SIZE_NM
    ):
        return f"pixel size {px!r} nm"
    if not np.isfinite(h).reshape(h.shape[0], -1).any(axis=1).all():
        return "a frame without a recorded pixel"
    return None


def _classify(op: str, path: Path) -> tuple[str, str]:
    """Read ``path`` in this process and classify the outcome (see the module)."""
    from napari_calcite_afm.errors import CalciteAFMError
    from napari_calcite_afm.io import list_channels, read_stack

    try:
        result = read_stack(path) if op == "read" else list_channels(path)
    except CalciteAFMError as exc:
        chain, cause = [], exc.__cause__ or exc.__context__
        while cause is not None and len(chain) < 10:
            chain.append(cause)
            cause = cause.__cause__ or cause.__context__
        if any(isinstance(c, MemoryError) for c in chain):
            return "fault", f"allocation: a MemoryError under {exc}"
        if str(path) not in str(exc):
            return "fault", f"the message does not name the file: {exc}"
        return "error", str(exc)[len(str(path)) + 2 :][:200]
    except BaseException as exc:  # every other exception is a fault
        return "fault", f"{type(exc).__name__}: {str(exc)[:200]}"
    why = check_result(op, result)
    return ("fault", f"not sane: {why}") if why else ("good", "")


def peak_rss_mb() -> int:
    """Peak resident size of this process in MB.

    From ``VmHWM`` in ``/proc/self/status`` (the peak of this process's own memory
    map): Linux's ``ru_maxrss`` carries the parent's peak over a fork, so a worker
    started from a large pytest process would report the parent's size.
    """
    import resource

    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def serve(limit_mb: int) -> None:
    """The worker's loop: ``op<TAB>path`` lines in, one JSON line out per read."""
    import logging
    import resource
    import warnings

    out = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # whatever the libraries print stays out of the answers
    resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    import napari_calcite_afm.io  # noqa: F401 - imported before the first timing

    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        op, _, path = line.rstrip("\n").partition("\t")
        if op == "sleep":  # a stand-in for a hanging reader (tests of the time limit)
            time.sleep(float(path))
        outcome, detail = _classify(op, Path(path)) if op != "sleep" else ("good", "")
        rss = peak_rss_mb()
        out.write(json.dumps({"outcome": outcome, "detail": detail, "rss_mb": rss}) + "\n")


# ----------------------------------------------------------------------------- main
def fuzz(sources: dict[str, Path], n: int, seed: int, worker: ReadWorker, work: Path) -> dict:
    """``n`` mutated copies of each source, each read and listed; the counts and faults."""
    rng = random.Random(seed)
    counts: dict[str, Counter] = {}
    faults: list[dict] = []
    peak: dict[str, int] = {}
    slowest: dict[str, float] = {}
    for fmt, src in sources.items():
        worker.close()  # a fresh worker per format: its peak resident size is the format's
        data = src.read_bytes()
        counts[fmt] = Counter()
        t = time.perf_counter()
        for i in range(n):
            edits = random_edits(rng)
            path = work / f"{fmt}_{i}{src.suffix}"
            path.write_bytes(mutate(data, edits))
            for op in ("read", "list"):
                ans = worker.run(op, path)
                counts[fmt][ans["outcome"]] += 1
                peak[fmt] = max(peak.get(fmt, 0), ans["rss_mb"] or 0)
                slowest[fmt] = max(slowest.get(fmt, 0.0), round(ans["seconds"], 2))
                if ans["outcome"] == "fault":
                    faults.append({"format": fmt, "op": op, "edits": repr(edits), **ans})
            path.unlink()
        print(
            f"{fmt:12s} {n} copies x 2 reads in {time.perf_counter() - t:6.1f} s: "
            + ", ".join(f"{k} {counts[fmt][k]}" for k in ("error", "good", "fault")),
            flush=True,
        )
    return {"counts": counts, "faults": faults, "peak_rss_mb": peak, "slowest_s": slowest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="mutated copies per format")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--formats", default="", help="comma-separated (default: all)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per read")
    ap.add_argument("--memory-mb", type=int, default=1024, help="peak resident size limit")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    real = find_real_data()
    if real is None:
        sys.exit("shared/data/afm-real not found (set CALCITE_AFM_REAL_DATA)")
    worker = ReadWorker(timeout=args.timeout, memory_mb=args.memory_mb)
    with tempfile.TemporaryDirectory() as tmp:
        sources = make_sources(real, Path(tmp))
        if args.formats:
            sources = {k: v for k, v in sources.items() if k in args.formats.split(",")}
        t = time.perf_counter()
        try:
            res = fuzz(sources, args.n, args.seed, worker, Path(tmp))
        finally:
            worker.close()
    total = sum(res["counts"].values(), Counter())
    print(
        f"\n{sum(total.values())} reads of {args.n * len(sources)} mutated copies "
        f"in {time.perf_counter() - t:.0f} s: "
        + ", ".join(f"{k} {total[k]}" for k in ("error", "good", "fault"))
    )
    print("peak resident size of the worker per format (MB):", json.dumps(res["peak_rss_mb"]))
    print("slowest read per format (s):", json.dumps(res["slowest_s"]))
    for f in res["faults"]:
        print(f"FAULT {f['format']} {f['op']}: {f['detail']}  edits={f['edits']}")


if __name__ == "__main__":
    main()
