"""Label values, names and colours, and the one check every label array goes through.

Label values are shared by every stage, file and widget:

====  ==========================  =========
value meaning                     colour
====  ==========================  =========
0     unlabelled / ignored        clear
1     multilayer pit (region A)   orange
2     terrace (region B)          blue
3     monolayer etch pit          yellow
====  ==========================  =========

For two-class work the monolayer pits count as terrace (3 becomes 2).

Examples
--------
>>> import numpy as np
>>> check_labels(np.array([[0, 1], [2, 3]]))
array([[0, 1],
       [2, 3]], dtype=uint8)
>>> labels_to_two_class(np.array([0, 1, 2, 3]))
array([0, 1, 2, 2], dtype=uint8)
"""

from __future__ import annotations

import numpy as np

from .errors import CalciteAFMError

__all__ = [
    "LABEL_COLORS",
    "LABEL_MONOLAYER",
    "LABEL_MULTILAYER",
    "LABEL_NAMES",
    "LABEL_TERRACE",
    "LABEL_UNLABELLED",
    "MAX_LABEL",
    "check_labels",
    "labels_to_n_classes",
    "labels_to_two_class",
]

LABEL_UNLABELLED = 0
LABEL_MULTILAYER = 1
LABEL_TERRACE = 2
LABEL_MONOLAYER = 3
#: The largest valid label value.
MAX_LABEL = LABEL_MONOLAYER

#: Names of the label values, as the widgets and figures show them.
LABEL_NAMES: dict[int, str] = {
    LABEL_UNLABELLED: "unlabelled",
    LABEL_MULTILAYER: "multilayer pit (A)",
    LABEL_TERRACE: "terrace (B)",
    LABEL_MONOLAYER: "monolayer pit",
}

#: Fixed RGBA colours of the label values (0 transparent).
LABEL_COLORS: dict[int, tuple[float, float, float, float]] = {
    LABEL_UNLABELLED: (0.0, 0.0, 0.0, 0.0),
    LABEL_MULTILAYER: (1.0, 0.55, 0.0, 1.0),  # orange: multilayer pits
    LABEL_TERRACE: (0.12, 0.47, 0.85, 1.0),  # blue: terraces
    LABEL_MONOLAYER: (1.0, 0.92, 0.1, 1.0),  # yellow: monolayer pits
}


def check_labels(
    labels, *, error: type[Exception] = CalciteAFMError, what: str = "labels"
) -> np.ndarray:
    """Check that ``labels`` holds whole numbers 0..3 and return them as ``uint8``.

    Parameters
    ----------
    labels : array_like
        Label values of any shape: integers, or floats that are whole numbers (as
        some TIFF writers store them). Booleans are refused: a pit mask is not a label
        image (use ``np.where(mask, 1, 2)``).
    error : type of Exception, optional
        The exception raised on bad input (a :class:`~.errors.CalciteAFMError` subclass
        by convention, so that the caller's stage shows in the type).
    what : str, optional
        How the message names the array (e.g. a file name).

    Returns
    -------
    numpy.ndarray
        A new ``uint8`` array of the same shape with values 0..3.

    Raises
    ------
    CalciteAFMError
        (or ``error``) for booleans, non-numbers, NaN, fractions or values outside 0..3.

    Examples
    --------
    >>> check_labels([0.0, 2.0])
    array([0, 2], dtype=uint8)
    >>> check_labels([0, 4])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.CalciteAFMError: labels must be 0 (unlabelled) or 1..3, ...
    """
    arr = np.asarray(labels)
    if arr.dtype == bool:
        raise error(
            f"{what} must be integer class labels (0 unlabelled, 1 multilayer pit, "
            "2 terrace, 3 monolayer pit), got a boolean mask; for a pit mask use "
            "np.where(mask, 1, 2)"
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise error(f"{what} must be whole numbers 0..3 (found NaN or fractions)")
    elif arr.dtype.kind not in "iu":
        raise error(f"{what} must be integers 0..3, got dtype {arr.dtype}")
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > MAX_LABEL:
            raise error(f"{what} must be 0 (unlabelled) or 1..3, found values {lo:g}..{hi:g}")
    return arr.astype(np.uint8, copy=True)


def labels_to_n_classes(
    labels, n_classes: int, *, error: type[Exception] = CalciteAFMError
) -> np.ndarray:
    """Check ``labels`` and map them to ``n_classes`` classes (3 becomes 2 for two).

    Parameters
    ----------
    labels : array_like
        Label values 0..3 (see :func:`check_labels`).
    n_classes : int
        2 (pit, terrace) or 3 (pit, terrace, monolayer pit).
    error : type of Exception, optional
        The exception raised on bad input.

    Returns
    -------
    numpy.ndarray
        A new ``uint8`` array with values 0..n_classes.

    Examples
    --------
    >>> labels_to_n_classes([0, 1, 2, 3], 2)
    array([0, 1, 2, 2], dtype=uint8)
    >>> labels_to_n_classes([0, 1, 2, 3], 3)
    array([0, 1, 2, 3], dtype=uint8)
    """
    if n_classes not in (2, 3):
        raise error(f"the number of classes must be 2 or 3, got {n_classes!r}")
    out = check_labels(labels, error=error)
    if n_classes == 2:
        out[out == LABEL_MONOLAYER] = LABEL_TERRACE
    return out


def labels_to_two_class(labels: np.ndarray) -> np.ndarray:
    """Merge the monolayer-pit class into terrace: 3 becomes 2.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer label array with values 0..3 (any shape).

    Returns
    -------
    numpy.ndarray
        A new ``uint8`` array with values 0..2 (the input is not modified).

    Raises
    ------
    CalciteAFMError
        If the array is not integer-valued or holds values outside 0..3.

    Examples
    --------
    >>> labels_to_two_class(np.array([[3, 1]]))
    array([[2, 1]], dtype=uint8)
    """
    return labels_to_n_classes(labels, 2)
