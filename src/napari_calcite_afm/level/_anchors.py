"""Pit bottoms: the points of a dissolving calcite surface that do not move.

A multilayer (dislocation) etch pit grows by step loops that start, one after another, at
its dislocation: its walls retreat, but its deepest point stays on the dislocation for as
long as the pit lives. Those bottoms are the anchors of the drift registration
(:func:`~.drift.register_stack`): where the whole-frame match follows retreating steps
and the terrace texture is too weak to correct it, the bottoms seen in two frames give
the shift, and a bottom seen in many frames ties all of them to one point, so that
errors do not add up along a long movie.

:func:`_pit_bottoms` finds the bottoms of one frame (a local minimum at least
``_DEPTH_NM`` below the surface closed over ``_CLOSING_PX``: several monolayer steps,
which a monolayer pit, one step deep, never is); :func:`_match` finds the shift on which
the bottoms of two frames agree; :func:`_anchor_pass` corrects the successive pairs with
them and returns the measurements that tie each bottom's frames together.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from .._util import available_cpus, thread_map
from ._consensus import _Measurement
from ._texture import _TEX_WEAK

_DEPTH_NM = 1.5  # a bottom lies at least this far below its surroundings (~5 steps)
_SMOOTH_PX = 1.5  # Gaussian smoothing before the minima are looked for
_MIN_SEP_PX = 5  # two bottoms are at least this far apart
_CLOSING_PX = 15  # half size of the closing that gives the surroundings
_LEVEL_NM = 0.2  # the bottom is the centroid of the pixels this close to the minimum
_MATCH_PX = 1.0  # bottoms agreeing on a shift to this are one match
_DEPTH_RATIO = 1.7  # a bottom's depth may change by at most this factor between frames
_CORRECT_PX = 1.5  # a pair whose bottoms disagree with its shift by more is corrected
_Z_MARGIN = 0.5  # the texture peak at the bottoms' shift may be this much weaker
_WEIGHT = 10.0  # weight of one bottom seen in two frames (texture pairs: (z - 3)**2)
_STEADY_PAIRS = 3  # a lone bottom followed through this many successive pairs...
_STEADY_PX = 2.0  # ...at an offset from their own shifts that changes by at most this


def _pit_bottoms(frame: np.ndarray) -> np.ndarray:
    """Bottoms of the deep pits of one frame: ``(k, 3)`` rows of ``y, x`` (pixels,
    subpixel) and depth below the surroundings (nm); frame heights in nm."""
    z = np.asarray(frame, np.float64)
    finite = np.isfinite(z)
    if finite.sum() < 16:
        return np.zeros((0, 3))
    z = np.where(finite, z, np.nanmedian(z))
    s = ndimage.gaussian_filter(z, _SMOOTH_PX)
    size = 2 * _CLOSING_PX + 1
    depth = ndimage.grey_closing(s, size=(size, size)) - s
    minima = (s == ndimage.minimum_filter(s, 2 * _MIN_SEP_PX + 1)) & (depth >= _DEPTH_NM)
    border = _CLOSING_PX // 2  # a minimum at the edge may be a pit cut by the frame
    minima[:border] = minima[-border:] = False
    minima[:, :border] = minima[:, -border:] = False
    minima &= ndimage.binary_erosion(finite, iterations=border, border_value=0)
    out = []
    yy, xx = np.mgrid[-3:4, -3:4]
    for y, x in zip(*np.nonzero(minima)):
        win = s[y - 3 : y + 4, x - 3 : x + 4]
        if win.shape != yy.shape:
            continue
        w = np.clip(_LEVEL_NM - (win - s[y, x]), 0.0, None)
        total = w.sum()
        cy, cx = y + (w * yy).sum() / total, x + (w * xx).sum() / total
        if all(np.hypot(cy - oy, cx - ox) >= _MIN_SEP_PX for oy, ox, _ in out):
            out.append((cy, cx, depth[y, x]))  # (a flat minimum has several equal pixels)
    return np.array(out, float).reshape(-1, 3)


def _match(pa: np.ndarray, pb: np.ndarray, guess: np.ndarray, search: float):
    """The shift (to apply to frame b to align it with frame a) that most bottoms agree on.

    Candidates are the offsets between a bottom of each frame within ``search`` pixels of
    ``guess`` and of similar depth; the one that most others confirm (to ``_MATCH_PX``)
    wins, ties going to the one closest to ``guess``. Returns ``(shift, pairs)`` with
    ``pairs`` the ``(index in a, index in b)`` of the agreeing bottoms, or ``None``.
    """
    if not len(pa) or not len(pb):
        return None
    d = pa[:, None, :2] - pb[None, :, :2]
    ratio = pa[:, None, 2] / pb[None, :, 2]
    ok = (np.abs(d - guess).max(-1) <= search) & (ratio < _DEPTH_RATIO) & (ratio > 1 / _DEPTH_RATIO)
    best = None
    for ia, ib in np.argwhere(ok):
        agree = ok & (np.abs(d - d[ia, ib]).max(-1) <= _MATCH_PX)
        rows, cols = np.nonzero(agree)
        support = min(len(set(rows.tolist())), len(set(cols.tolist())))
        key = (support, -float(np.abs(d[ia, ib] - guess).max()))
        if best is None or key > best[0]:
            best = (key, agree)
    if best is None:
        return None
    agree = best[1]
    pairs = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for ia, ib in np.argwhere(agree):  # one bottom of each frame per match
        if ia not in used_a and ib not in used_b:
            pairs.append((int(ia), int(ib)))
            used_a.add(int(ia))
            used_b.add(int(ib))
    shift = np.mean([d[ia, ib] for ia, ib in pairs], axis=0)
    return shift, pairs


def _texture_agrees(p, shift: np.ndarray, textures, refine, shape) -> bool:
    """Whether the texture, refined at the bottoms' ``shift``, peaks about as well there as
    at the pair's own shift, and *there* (a refinement that walks more than
    ``_MATCH_PX`` away found another peak, usually the pair's own); if so the pair takes
    the bottoms' shift, refined on the texture. Only for pairs whose texture shows the
    drift: where it is silent, :func:`_proven` decides."""
    a, b = textures[p.ref], textures[p.mov]
    if a is None or b is None:
        return False
    _, z_own = refine(a, b, p.shift, shape)
    refined, z = refine(a, b, shift, shape)
    if z < z_own - _Z_MARGIN or np.abs(refined - shift).max() > _MATCH_PX:
        return False  # weaker there, or the refinement walked off to another peak
    p.shift = refined
    p.texture_z = z
    return True


def _silent(p) -> bool:
    """Whether a pair's texture showed nothing (its peak below ``_TEX_WEAK``, or none):
    it can neither confirm nor refute the bottoms."""
    return not p.texture_z >= _TEX_WEAK


def _proven(p, matched: list[tuple[int, int]], verified: set[tuple[int, int]]) -> bool:
    """Whether the bottoms of a pair whose texture is silent may be used: two bottoms or
    more agree (a spurious minimum seldom moves with another), or one of them is in
    another match that was used (``verified``: a bottom proven in this movie, before or
    after this pair)."""
    if len(matched) >= 2:
        return True
    return any((p.ref, ia) in verified or (p.mov, ib) in verified for ia, ib in matched)


def _without(items: list, removed: list) -> list:
    """``items`` less ``removed`` (by identity: the items hold arrays, no == on them)."""
    gone = {id(item) for item in removed}
    return [item for item in items if id(item) not in gone]


def _spread_proof(pending: list, verified: set, take: Callable[[list], None]) -> list:
    """Take the pending pairs whose bottoms are proven (:func:`_proven`), again and again
    as each taken pair proves its bottoms: proof spreads along a bottom's frames, forward
    and back. Returns the pairs still pending."""
    while pending:
        proven = [item for item in pending if _proven(item[1], item[3], verified)]
        if not proven:
            break
        take(proven)
        pending = _without(pending, proven)
    return pending


def _steady(pending: list) -> list:
    """The pending pairs that follow one bottom through a run of at least
    ``_STEADY_PAIRS`` successive pairs while its offset from the pairs' own shifts changes
    by at most ``_STEADY_PX`` from pair to pair.

    Where the texture is silent, the pairs' own shifts follow the retreating steps, whose
    motion changes slowly; a bottom on its dislocation keeps a steady offset from them (the
    motion of the steps), while a spurious minimum (in a wide pit floor) wanders and
    breaks the run. Items are ``(prev, pair, shift, matched)`` of :func:`_anchor_pass`.
    """
    runs: list[list] = [[]]
    for item in sorted(pending, key=lambda it: it[1].mov):
        prev, p, shift, matched = item
        if p.ref != prev:  # not a successive pair (frames measured against the first)
            runs.append([])
            continue
        if runs[-1]:
            _, q, q_shift, q_matched = runs[-1][-1]
            linked = q.mov == p.ref and {b for _, b in q_matched} & {a for a, _ in matched}
            change = np.abs((p.shift - shift) - (q.shift - q_shift)).max()
            if not (linked and change <= _STEADY_PX):
                runs.append([])
        runs[-1].append(item)
    return [item for run in runs if len(run) >= _STEADY_PAIRS for item in run]


def _tracks(chain: list[int], links: dict[int, list[tuple[int, int]]]) -> list[dict[int, int]]:
    """Bottoms followed from frame to frame: ``{frame: index of its bottom}`` per track.

    ``chain`` lists the accepted frames in order; ``links[j]`` holds the matched
    ``(index in the frame before j in chain, index in j)``. A bottom missed in one frame
    ends its track (a later sighting starts a new one).
    """
    open_tracks: dict[int, dict[int, int]] = {}  # bottom index in the last frame -> track
    done = []
    for prev, cur in itertools.pairwise(chain):
        nxt: dict[int, dict[int, int]] = {}
        for ia, ib in links.get(cur, []):
            track = open_tracks.pop(ia, None) or {prev: ia}
            track[cur] = ib
            nxt[ib] = track
        done.extend(open_tracks.values())
        open_tracks = nxt
    done.extend(open_tracks.values())
    return [t for t in done if len(t) >= 2]


def _anchor_pass(
    pairs, frames: np.ndarray, textures, refine, shape, max_shift: float | None = None
) -> list[_Measurement]:
    """Correct the accepted pairs on the pit bottoms; tie each bottom's frames together.

    A pair (``_Pair`` with ``shift`` set) whose bottoms agree on a shift more than
    ``_CORRECT_PX`` from its own takes the bottoms' shift (refined on the texture) when
    the terrace texture peaks there about as well as at its own (a spurious bottom, in
    a wide pit floor or a pit leaving the frame, gives a shift the texture refutes:
    :func:`_texture_agrees`). Where its texture is silent (:func:`_silent`) it takes
    them once they are proven (:func:`_proven`: two or more agree, or a bottom is used in
    another pair, before or after), or when one bottom is followed through at least 3
    successive such pairs at a steady offset from their shifts (:func:`_steady`). A pair
    whose bottoms are refused still follows those that agree with its own shift. Pairs
    that use bottoms record ``anchors``, the number of bottoms that agree.

    Returns the measurements that tie together the frames in which one bottom is
    followed (matched from each accepted frame to the next): one between every two of
    them, of weight ``_WEIGHT / L`` for a bottom followed through ``L`` frames (so that
    it weighs ``_WEIGHT`` per frame however long it is followed). With every frame
    measured against frame 0 (``reference="first"``) each pair's bottoms give one
    measurement each. Shifts beyond ``max_shift`` (pixels, per axis) are not used.
    """
    accepted = [p for p in pairs if not p.reason]
    if not accepted:
        return []
    needed = sorted({accepted[0].ref} | {p.mov for p in accepted})
    found_all = thread_map(lambda i: _pit_bottoms(frames[i]), needed, available_cpus())
    bottoms = dict(zip(needed, found_all))
    search = max(4.0, min(shape) / 8.0)
    chain = [accepted[0].ref] + [p.mov for p in accepted]
    meas: list[_Measurement] = []
    links: dict[int, list[tuple[int, int]]] = {}
    verified: set[tuple[int, int]] = set()  # (frame, bottom) of the matches used
    pending = []  # pairs with a silent texture whose bottoms still need proof

    def plausible(shift: np.ndarray) -> bool:  # within the caller's bound
        return max_shift is None or bool(np.abs(shift).max() <= max_shift)

    def use(prev: int, p, shift: np.ndarray, matched: list[tuple[int, int]]) -> None:
        p.anchors = len(matched)
        verified.update((p.ref, ia) for ia, _ in matched)
        verified.update((p.mov, ib) for _, ib in matched)
        if p.ref == prev:
            links[p.mov] = matched
        else:
            meas.extend(_Measurement(p.ref, p.mov, shift, _WEIGHT / 2) for _ in matched)

    for prev, p in zip(chain, accepted):
        found = _match(bottoms[p.ref], bottoms[p.mov], p.shift, search)
        if found is None:
            continue
        shift, matched = found
        if not plausible(shift):
            continue
        if np.abs(shift - p.shift).max() > _CORRECT_PX:
            if _silent(p):
                pending.append((prev, p, shift, matched))
                continue
            if not _texture_agrees(p, shift, textures, refine, shape):
                continue  # the texture prefers the pair's own shift: the bottoms are not used
        use(prev, p, shift, matched)

    def take(items) -> None:  # pending pairs whose bottoms are now trusted
        for prev, p, shift, matched in items:
            p.shift = shift
            use(prev, p, shift, matched)

    pending = _spread_proof(pending, verified, take)
    steady = _steady(pending)  # a lone bottom that moves with the drift, pair after pair
    take(steady)
    pending = _spread_proof(_without(pending, steady), verified, take)
    for prev, p in zip(chain, accepted):  # the rest: follow the bottoms that agree with it
        if not p.anchors:
            found = _match(bottoms[p.ref], bottoms[p.mov], p.shift, _CORRECT_PX)
            if found is not None and plausible(found[0]):
                use(prev, p, *found)
    for track in _tracks(chain, links):
        frames_in = sorted(track)
        w = _WEIGHT / len(frames_in)
        for k, a in enumerate(frames_in):
            for b in frames_in[k + 1 :]:
                pa, pb = bottoms[a][track[a]], bottoms[b][track[b]]
                meas.append(_Measurement(a, b, pa[:2] - pb[:2], w))
    return meas
