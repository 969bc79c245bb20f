"""Preprocessing steps as data, each with its NumPy reference and how it fits its statistics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hardware.errors import UserError

LAYOUTS = {"nhwc_to_nchw": (0, 3, 1, 2), "nchw_to_nhwc": (0, 2, 3, 1)}


def _number(value: Any, key: str) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise UserError(f"'{key}' must be a number, got {value!r}")
    return value


def _axis(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"'axis' must be an integer, got {value!r}")


def _floats(value: Any, key: str) -> tuple[float, ...] | None:
    """A statistic as given: None, one number for every column, or one number per column."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        raise UserError(f"'{key}' must be a number or a list of numbers, got {value!r}")
    return tuple(float(v) for v in items)


def per_column(values: tuple[float, ...], ndim: int, axis: int) -> np.ndarray:
    """Statistics as a float32 array that broadcasts along `axis` of an `ndim`-d tensor."""
    shape = [1] * ndim
    if len(values) > 1:
        shape[axis] = len(values)
    return np.asarray(values, np.float32).reshape(shape)


def _column_stat(x: np.ndarray, valid: np.ndarray, axis: int, stat, empty: float) -> tuple:
    """`stat` of each column's valid values along `axis`; `empty` where a column has none."""
    cols = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
    keep = np.moveaxis(valid, axis, -1).reshape(cols.shape)
    return tuple(
        float(stat(cols[keep[:, j], j])) if keep[:, j].any() else empty
        for j in range(cols.shape[1])
    )


@dataclass(frozen=True)
class ReplaceInvalid:
    """Replace NaN, ±inf and values outside [low, high] (when given) per column along `axis`
    by the column's mean or median of valid values (fitted) or by a constant `value`."""

    step: ClassVar[str] = "replace_invalid"
    strategy: str = "median"
    value: float | None = None
    low: float | None = None
    high: float | None = None
    axis: int = -1
    fill: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.strategy not in ("mean", "median", "constant"):
            raise UserError(f"'with' is '{self.strategy}'; use one of mean, median, constant")
        for key in ("value", "low", "high"):
            _number(getattr(self, key), key)
        if (self.strategy == "constant") != (self.value is not None) and self.fill is None:
            raise UserError("give a 'value' with 'with = constant', and only then")
        _axis(self.axis)
        fill = self.fill if self.fill is not None else self.value
        object.__setattr__(self, "fill", _floats(fill, "fill"))

    def invalid(self, x: np.ndarray) -> np.ndarray:
        """True where a value is to be replaced."""
        bad = ~np.isfinite(x)
        if self.low is not None:
            bad |= x < np.float32(self.low)
        if self.high is not None:
            bad |= x > np.float32(self.high)
        return bad

    def fit(self, x: np.ndarray) -> ReplaceInvalid:
        x = x.astype(np.float32)
        stat = np.mean if self.strategy == "mean" else np.median
        return dataclasses.replace(
            self, fill=_column_stat(x, ~self.invalid(x), self.axis, stat, 0.0)
        )

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        return np.where(self.invalid(x), per_column(self.fill, x.ndim, self.axis), x)


@dataclass(frozen=True)
class Clip:
    """Limit values to [low, high]; NaN stays NaN."""

    step: ClassVar[str] = "clip"
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if _number(self.low, "low") is None and _number(self.high, "high") is None:
            raise UserError("give 'low', 'high' or both")

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        low = -np.inf if self.low is None else self.low
        high = np.inf if self.high is None else self.high
        return np.clip(x, np.float32(low), np.float32(high))


@dataclass(frozen=True)
class Standardize:
    """(x - mean) / std per column along `axis` (per channel for images); fitted statistics
    use finite values only, and a zero std becomes 1."""

    step: ClassVar[str] = "standardize"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    axis: int = -1

    def __post_init__(self) -> None:
        _axis(self.axis)
        object.__setattr__(self, "mean", _floats(self.mean, "mean"))
        object.__setattr__(self, "std", _floats(self.std, "std"))
        if self.std is not None and 0.0 in self.std:
            raise UserError("'std' must not contain zero")

    def fit(self, x: np.ndarray) -> Standardize:
        x, finite = x.astype(np.float32), np.isfinite(x)
        mean = self.mean or _column_stat(x, finite, self.axis, np.mean, 0.0)
        std = self.std or _column_stat(x, finite, self.axis, np.std, 1.0)
        return dataclasses.replace(self, mean=mean, std=tuple(s or 1.0 for s in std))

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        mean, std = (per_column(v, x.ndim, self.axis) for v in (self.mean, self.std))
        return (x - mean) / std


@dataclass(frozen=True)
class MinMax:
    """(x - minimum) / (maximum - minimum) per column along `axis`, mapping the fitted range
    to [0, 1]; a column with zero range maps to 0."""

    step: ClassVar[str] = "min_max"
    minimum: tuple[float, ...] | None = None
    maximum: tuple[float, ...] | None = None
    axis: int = -1

    def __post_init__(self) -> None:
        _axis(self.axis)
        object.__setattr__(self, "minimum", _floats(self.minimum, "minimum"))
        object.__setattr__(self, "maximum", _floats(self.maximum, "maximum"))

    def fit(self, x: np.ndarray) -> MinMax:
        x, finite = x.astype(np.float32), np.isfinite(x)
        low = self.minimum or _column_stat(x, finite, self.axis, np.min, 0.0)
        high = self.maximum or _column_stat(x, finite, self.axis, np.max, 0.0)
        return dataclasses.replace(self, minimum=low, maximum=high)

    def span(self) -> tuple[float, ...]:
        """maximum - minimum, with 1 in place of zero so constant columns stay finite."""
        if len(self.minimum) != len(self.maximum):
            raise UserError("min_max: 'minimum' and 'maximum' need the same length")
        return tuple((hi - lo) or 1.0 for lo, hi in zip(self.minimum, self.maximum, strict=True))

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        low, span = (per_column(v, x.ndim, self.axis) for v in (self.minimum, self.span()))
        return (x - low) / span


@dataclass(frozen=True)
class OneHot:
    """int64 codes [batch, columns] -> float32 [batch, sum of slots], one slot per category
    of each column. A graph cannot raise on an unseen code, so `unknown` states the rule:
    "zeros" gives the column all-zero slots, "extra" adds a last 'unknown' slot per column."""

    step: ClassVar[str] = "one_hot"
    categories: tuple[tuple[int, ...], ...] | None = None
    unknown: str = "zeros"

    def __post_init__(self) -> None:
        if self.unknown not in ("zeros", "extra"):
            raise UserError(f"'unknown' is '{self.unknown}'; use one of zeros, extra")
        if self.categories is None:
            return
        valid = isinstance(self.categories, (list, tuple)) and all(
            isinstance(c, (list, tuple)) and c and len(set(c)) == len(c) and _all_ints(c)
            for c in self.categories
        )
        if not valid:
            raise UserError("'categories' must be one list of distinct integers per column")
        object.__setattr__(self, "categories", tuple(tuple(c) for c in self.categories))

    def fit(self, x: np.ndarray) -> OneHot:
        cats = tuple(tuple(int(v) for v in np.unique(column)) for column in x.T)
        return dataclasses.replace(self, categories=cats)

    def width(self) -> int:
        """Output columns: the slots of every input column."""
        return sum(len(c) + (self.unknown == "extra") for c in self.categories)

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != len(self.categories):
            raise UserError(f"one_hot expects [batch, {len(self.categories)}], got {x.shape}")
        parts = []
        for j, cats in enumerate(self.categories):
            hot = (x[:, j, None] == np.asarray(cats)).astype(np.float32)
            parts.append(hot)
            if self.unknown == "extra":
                parts.append(1.0 - hot.sum(axis=1, keepdims=True))
        return np.concatenate(parts, axis=1)


def _all_ints(values) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


@dataclass(frozen=True)
class ToFloat:
    """uint8 -> float32 times `scale` (1/255 maps pixels to [0, 1])."""

    step: ClassVar[str] = "to_float"
    scale: float = 1.0 / 255.0

    def __post_init__(self) -> None:
        _number(self.scale, "scale")

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32) * np.float32(self.scale)


@dataclass(frozen=True)
class Layout:
    """Transpose a 4-d image batch: nhwc_to_nchw or nchw_to_nhwc."""

    step: ClassVar[str] = "layout"
    order: str = "nhwc_to_nchw"

    def __post_init__(self) -> None:
        if self.order not in LAYOUTS:
            raise UserError(f"'order' is '{self.order}'; use one of {', '.join(LAYOUTS)}")

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.transpose(x, LAYOUTS[self.order])


Step = ReplaceInvalid | Clip | Standardize | MinMax | OneHot | ToFloat | Layout
# "normalize" is the image word for a per-channel standardize.
STEPS = {c.step: c for c in (ReplaceInvalid, Clip, Standardize, MinMax, OneHot, ToFloat, Layout)}
STEPS["normalize"] = Standardize
# Steps that read raw integer data, so only as a first step, and the raw dtype they read.
RAW_DTYPES = {OneHot: "int64", ToFloat: "uint8"}
STATISTICS = {
    ReplaceInvalid: ("fill",),
    Standardize: ("mean", "std"),
    MinMax: ("minimum", "maximum"),
    OneHot: ("categories",),
}


def is_fitted(step: Step) -> bool:
    """True when every statistic of `step` is set."""
    return all(getattr(step, f) is not None for f in STATISTICS.get(type(step), ()))
