"""Columnar codec: a table becomes a grid of tokens and back, exactly.

The codec sees the table after SDV's data processor (RDT) has done the type work, so every column
is either numeric (ints, floats, datetimes as timestamps) or a set of categories (strings, booleans,
anything else). It only tokenizes; it knows nothing about SDV.

Vocabulary. Token 0 is BOS. Every other token belongs to exactly one *slot*; a slot is one token
position of one column, and its tokens form one contiguous id range, so a model can compute logits
for a slot as ``hidden @ W[start:end].T`` and decoding is constrained by construction.

* A categorical column has one slot: one token per distinct value, missing values included.
* A numeric column is first made an exact integer grid: ``k = (round(x * 10**decimals) - k_min)
  / step`` with the decimals the data needs (at most ``max_decimals``) and ``step`` the gcd of the
  differences (so dates stored as nanoseconds become days). The grid is cut into bins: quantile
  bins where the data is, single-value bins for spikes (e.g. the 0 of capital-gain), no bin wider
  than ``max_base ** n_offset``. Slot 0 holds the bin (and a missing-value token), slots 1..n hold
  the offset inside the bin as fixed-width base-B digits. A column with at most ``max_base``
  distinct values spread over a wide range keeps just those values (one token, no offsets), and
  a column whose whole range has at most ``2 * max_base`` grid points gets one token per point.

Every encoding is exact: decode(encode(x)) == x for every value the columns hold.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

BOS = 0


def _nan_mask(values):
    return pd.isna(pd.Series(values, copy=False)).to_numpy()


_EXACT_LIMIT = 2.0**53  # beyond this a double holds no fractional digits


def _is_integral(scaled):
    """Which values are integers up to float noise (the same test in fit and in encode):
    a few ulps of the scaled value, not a share of it, so 12345678.91 keeps its last digit."""
    return np.abs(scaled - np.rint(scaled)) <= 1e-9 + 1e-12 * np.abs(scaled)


def _find_decimals(x, max_decimals):
    """Smallest number of decimals at which every value is an integer, capped at
    ``max_decimals`` and at the precision a double can hold for the column's magnitude."""
    magnitude = np.abs(x).max() if x.size else 0.0
    for decimals in range(max_decimals + 1):
        if np.all(_is_integral(x * 10.0**decimals)):
            return decimals
        if magnitude * 10.0 ** (decimals + 1) >= _EXACT_LIMIT:
            return decimals
    return max_decimals


@dataclass
class CategoricalColumn:
    """One token per distinct value; missing values are a value of their own."""

    name: str
    values: list  # decoded value of each token; None/NaN for missing
    dtype: object
    has_nan: bool
    n_slots: int = 1

    @classmethod
    def fit(cls, name, series):
        nan = _nan_mask(series)
        uniques = pd.unique(series[~nan])
        try:
            uniques = sorted(uniques)
        except TypeError:  # mixed types: keep first-seen order
            uniques = list(uniques)
        values = list(uniques) + ([np.nan] if nan.any() else [])
        return cls(name=name, values=values, dtype=series.dtype, has_nan=bool(nan.any()))

    @property
    def slot_sizes(self):
        return [len(self.values)]

    def slot_ranks(self):
        return [np.full(len(self.values), np.nan)]  # categories have no order

    def encode(self, series):
        nan = _nan_mask(series)
        known = self.values[:-1] if self.has_nan else self.values
        codes = pd.Index(known).get_indexer(pd.Series(series, copy=False).where(~nan, None))
        codes = np.asarray(codes)
        if self.has_nan:
            codes[nan] = len(self.values) - 1
        bad = codes < 0
        if bad.any():
            example = series_value(series, bad)
            if pd.isna(example):
                raise ValueError(
                    f"Column '{self.name}' had no missing values in the training data, so a "
                    'missing value cannot be encoded.'
                )
            raise ValueError(
                f"Value {example!r} of column '{self.name}' was not seen in the training data. "
                f'Use one of its {len(known)} known categories.'
            )
        return codes[:, None].astype(np.int64)

    def decode(self, codes):
        values = np.empty(len(self.values), dtype=object)
        values[:] = self.values
        out = pd.Series(values[codes[:, 0]])
        if not self.has_nan or not out.isna().any():
            try:
                return out.astype(self.dtype)
            except (TypeError, ValueError):
                return out
        return out


@dataclass
class NumericColumn:
    """Exact integer grid, cut into bins (slot 0) and fixed-width offset digits (slots 1..n)."""

    name: str
    kind: str  # 'int', 'float' or 'datetime'
    dtype: object
    decimals: int
    k_min: int
    step: int
    starts: np.ndarray  # first grid point of each bin
    widths: np.ndarray  # grid points in each bin
    n_offset: int
    base: int
    has_nan: bool
    grid_max: int = field(default=0)
    max_decimals: int = field(default=10)

    @property
    def n_bins(self):
        return len(self.starts)

    @property
    def n_slots(self):
        return 1 + self.n_offset

    @property
    def slot_sizes(self):
        return [self.n_bins + int(self.has_nan)] + [self.base] * self.n_offset

    @property
    def nan_token(self):
        return self.n_bins if self.has_nan else None

    def slot_ranks(self):
        """Each slot's tokens as a position in ``[0, 1]`` along the column's order (bins and
        offset digits alike); the missing-value token has none (NaN)."""
        bins = np.linspace(0.0, 1.0, self.n_bins) if self.n_bins > 1 else np.full(self.n_bins, 0.5)
        digits = np.linspace(0.0, 1.0, self.base)  # base >= 2 wherever there are offsets
        return [np.concatenate([bins, [np.nan] if self.has_nan else []])] + \
            [digits] * self.n_offset

    def bound_widths(self):
        """Grid points in each bin token's bin (the missing-value token has one: offset 0)."""
        return np.concatenate([self.widths, [1] if self.has_nan else []]).astype(np.int64)

    @staticmethod
    def _as_float(series, kind):
        if kind == 'datetime':
            values = pd.Series(series, copy=False)
            nan = values.isna().to_numpy()
            out = values.to_numpy(dtype='datetime64[ns]').astype(np.int64).astype(np.float64)
            out[nan] = np.nan
            return out
        return pd.to_numeric(pd.Series(series, copy=False), errors='raise').to_numpy(np.float64)

    @classmethod
    def fit(cls, name, series, max_base=256, max_decimals=10):
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            kind = 'datetime'
        elif pd.api.types.is_integer_dtype(series.dtype):
            kind = 'int'
        else:
            kind = 'float'
        x = cls._as_float(series, kind)
        nan = np.isnan(x)
        finite = x[~nan]
        if np.isinf(finite).any():
            raise ValueError(f"Column '{name}' holds infinite values; replace them before fitting.")
        if finite.size == 0:
            # All missing: a single missing-value token represents the whole column.
            return cls(name, kind, series.dtype, 0, 0, 1, np.zeros(0, np.int64),
                       np.zeros(0, np.int64), 0, 1, True)
        decimals = 0 if kind == 'datetime' else _find_decimals(finite, max_decimals)
        scaled = np.rint(finite * 10.0**decimals).astype(np.int64)
        k_min = int(scaled.min())
        diffs = scaled - k_min
        step = int(np.gcd.reduce(diffs)) or 1
        k = diffs // step
        grid_max = int(k.max())
        starts, widths, n_offset, base = cls._make_bins(k, grid_max + 1, max_base)
        return cls(name, kind, series.dtype, decimals, k_min, step, starts, widths, n_offset,
                   base, bool(nan.any()), grid_max, max_decimals)

    @staticmethod
    def _make_bins(k, size, max_base):
        uniques, counts = np.unique(k, return_counts=True)
        if size <= 2 * max_base:  # one token per grid point
            return np.arange(size, dtype=np.int64), np.ones(size, np.int64), 0, 1
        if len(uniques) <= max_base:  # few values over a wide range: keep the values themselves
            return uniques.astype(np.int64), np.ones(len(uniques), np.int64), 0, 1
        # Quantile edges put resolution where the data is; frequent values get a bin of their own.
        quantiles = np.quantile(k, np.linspace(0, 1, max_base + 1), method='lower')
        spikes = uniques[counts > len(k) / max_base]
        edges = np.unique(np.concatenate([[0, size], quantiles, spikes, spikes + 1]))
        edges = edges[edges <= size]
        # More offset digits until the bins fit the slot, or until no bin needs splitting (with
        # many spikes the bin count alone can exceed 2 * max_base); never a fixed digit cap, which
        # on a huge range with a small base asked for billions of pieces.
        n_offset = 0
        while True:
            n_offset += 1
            cap = min(max_base**n_offset, np.iinfo(np.int64).max)
            pieces = np.maximum(1, -(-np.diff(edges) // cap))
            if pieces.sum() <= 2 * max_base or (pieces == 1).all():
                break
        # Split bins wider than cap into equal pieces so the offsets fit n_offset digits.
        starts, widths = [], []
        for lo, hi, n in zip(edges[:-1], edges[1:], pieces):
            cuts = np.linspace(lo, hi, n + 1).round().astype(np.int64)
            starts.extend(cuts[:-1])
            widths.extend(np.diff(cuts))
        starts, widths = np.asarray(starts, np.int64), np.asarray(widths, np.int64)
        base = max(2, math.ceil(int(widths.max()) ** (1.0 / n_offset)))
        while base**n_offset < widths.max():
            base += 1
        return starts, widths, n_offset, base

    def to_grid(self, series):
        """Grid index of each value (-1 for missing); clear errors for values off the grid."""
        x = self._as_float(series, self.kind)
        nan = np.isnan(x)
        if nan.any() and not self.has_nan:
            raise ValueError(
                f"Column '{self.name}' had no missing values in the training data, so a "
                'missing value cannot be encoded.'
            )
        raw = np.where(nan, 0.0, x) * 10.0**self.decimals
        scaled = np.rint(raw)
        # At the decimals cap, finer digits are rounded (documented); below it they are an error.
        # Same tolerance as fit, so every training value encodes and nothing coarser slips by.
        off_precision = ~nan & (self.decimals < self.max_decimals) & ~_is_integral(raw)
        k_float = (scaled - self.k_min) / self.step
        off_step = ~nan & (k_float != np.rint(k_float))
        if (off_precision | off_step).any():
            bad = series_value(series, off_precision | off_step)
            raise ValueError(
                f"Value {bad!r} of column '{self.name}' is finer than the column's precision "
                f'({self.decimals} decimals, step {self.step / 10**self.decimals:g}).'
            )
        out_of_range = ~nan & ((k_float < 0) | (k_float > self.grid_max))
        if out_of_range.any():
            bad = series_value(series, out_of_range)
            lo, hi = self.grid_to_float(np.array([0, self.grid_max]))
            raise ValueError(
                f"Value {bad!r} of column '{self.name}' is outside the range seen in the "
                f'training data [{lo:g}, {hi:g}].'
            )
        return np.where(nan, -1, np.rint(k_float)).astype(np.int64)

    def grid_to_float(self, k):
        return (k.astype(np.int64) * self.step + self.k_min) / 10.0**self.decimals

    def encode(self, series):
        return self.codes_of_grid(self.to_grid(series), series)

    def codes_of_grid(self, k, series=None):
        """Local codes ``[rows, n_slots]`` of grid indices ``k`` (-1 for missing)."""
        k = np.asarray(k, dtype=np.int64)
        nan = k < 0
        out = np.zeros((len(k), self.n_slots), dtype=np.int64)
        if self.n_bins:
            bins = np.searchsorted(self.starts, np.where(nan, 0, k), side='right') - 1
            offset = np.where(nan, 0, k - self.starts[bins])
            unseen = ~nan & ((bins < 0) | (offset >= self.widths[bins]))
            if unseen.any():
                bad = series_value(series, unseen) if series is not None else k[unseen][0]
                raise ValueError(
                    f"Value {bad!r} of column '{self.name}' was not seen in the training data; "
                    'this column keeps only its observed values.'
                )
            out[:, 0] = bins
            for j in range(self.n_offset):
                out[:, self.n_offset - j] = offset % self.base
                offset = offset // self.base
        if self.has_nan:
            out[nan, 0] = self.nan_token
        return out

    def grid_of_codes(self, codes):
        """Grid index of each row of local codes and its missing-value mask (k is 0 there)."""
        codes = np.asarray(codes, dtype=np.int64)
        bins = codes[:, 0]
        nan = bins == self.nan_token if self.has_nan else np.zeros(len(bins), bool)
        offset = np.zeros(len(bins), np.int64)
        for j in range(self.n_offset):
            offset = offset * self.base + codes[:, 1 + j]
        safe_bins = np.where(nan, 0, bins)
        if self.n_bins:
            k = self.starts[safe_bins] + np.minimum(offset, self.widths[safe_bins] - 1)
        else:
            k = np.zeros(len(bins), np.int64)
        return k, nan

    def decode(self, codes):
        k, nan = self.grid_of_codes(codes)
        if self.kind == 'datetime':
            stamps = (k * self.step + self.k_min).astype('datetime64[ns]')
            out = pd.Series(stamps)
            out[nan] = pd.NaT
            return out.astype(self.dtype) if str(self.dtype) != 'object' else out
        if self.kind == 'int' and not nan.any():  # integers stay integers, exactly
            return pd.Series(k * self.step + self.k_min).astype(self.dtype)
        x = self.grid_to_float(k)
        x[nan] = np.nan
        return pd.Series(x)


def series_value(series, mask):
    value = pd.Series(series, copy=False)[np.asarray(mask)].iloc[0]
    return value.item() if isinstance(value, np.generic) else value


class ColumnarCodec:
    """Maps a DataFrame to a token grid ``[rows, slots]`` (canonical column order) and back.

    Args:
        max_base (int): most tokens in a numeric slot; larger means fewer, wider slots.
        max_decimals (int): precision cap for floats; finer digits are rounded.
    """

    def __init__(self, max_base=256, max_decimals=10):
        if not isinstance(max_base, int) or max_base < 2:
            raise ValueError(f'max_base must be an integer >= 2, got {max_base!r}.')
        self.max_base = max_base
        self.max_decimals = max_decimals
        self.columns = []

    def fit(self, data):
        if data.shape[1] == 0:
            raise ValueError('The table has no columns to model.')
        self.columns = []
        for name in data.columns:
            series = data[name]
            numeric = (
                pd.api.types.is_numeric_dtype(series.dtype)
                and not pd.api.types.is_bool_dtype(series.dtype)
            ) or pd.api.types.is_datetime64_any_dtype(series.dtype)
            if numeric:
                column = NumericColumn.fit(name, series, self.max_base, self.max_decimals)
            else:
                column = CategoricalColumn.fit(name, series)
            self.columns.append(column)
        self._build_layout()
        return self

    def _build_layout(self):
        """Token id ranges of every slot; token 0 is BOS."""
        starts, sizes, slot_column, slot_position = [], [], [], []
        next_id = 1
        for c, column in enumerate(self.columns):
            for p, size in enumerate(column.slot_sizes):
                starts.append(next_id)
                sizes.append(size)
                slot_column.append(c)
                slot_position.append(p)
                next_id += size
        self.slot_start = np.asarray(starts, np.int64)
        self.slot_size = np.asarray(sizes, np.int64)
        self.slot_column = np.asarray(slot_column, np.int64)
        self.slot_position = np.asarray(slot_position, np.int64)
        self.column_slots = [np.flatnonzero(self.slot_column == c) for c in range(len(self.columns))]
        self.vocab_size = next_id

    @property
    def column_names(self):
        return [column.name for column in self.columns]

    @property
    def n_slots(self):
        return len(self.slot_start)

    def token_ranks(self):
        """``[vocab_size]``: each token's position in ``[0, 1]`` within its ordered slot (numeric
        bins and offset digits), NaN for tokens without an order (BOS, categories, missing)."""
        ranks = [np.full(1, np.nan)]  # BOS
        for column in self.columns:
            ranks += column.slot_ranks()
        return np.concatenate(ranks)

    def encode_columns(self, data, columns=None):
        """Local codes (0-based within each slot) of the given columns: ``[rows, their slots]``."""
        names = self.column_names if columns is None else list(columns)
        parts = []
        for name in names:
            if name not in self.column_names:
                raise ValueError(f"Unknown column '{name}'. Known columns: {self.column_names}.")
            column = self.columns[self.column_names.index(name)]
            parts.append(column.encode(data[name]))
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(data), 0), np.int64)

    def slots_of(self, columns):
        return np.concatenate(
            [self.column_slots[self.column_names.index(name)] for name in columns]
        ) if len(columns) else np.zeros(0, np.int64)

    def encode(self, data):
        """Global token ids of every slot in canonical order: ``[rows, n_slots]``."""
        missing = [name for name in self.column_names if name not in data.columns]
        if missing:
            raise ValueError(f'Columns {missing} are missing from the data.')
        return self.encode_columns(data) + self.slot_start[None, :]

    def decode(self, tokens):
        """Inverse of :meth:`encode`; ``tokens`` is ``[rows, n_slots]`` in canonical slot order."""
        tokens = np.asarray(tokens, dtype=np.int64)
        local = tokens - self.slot_start[None, :]
        if (local < 0).any() or (local >= self.slot_size[None, :]).any():
            raise ValueError('Token ids do not belong to their slots; the sequence is invalid.')
        return pd.DataFrame({
            column.name: column.decode(local[:, self.column_slots[c]])
            for c, column in enumerate(self.columns)
        })
