"""Rewards for TabGRAA alignment: how real does each synthetic row look?

All built-in rewards work on features read straight off the token grid (no decoding): a numeric
column becomes its position on the column's exact grid, a categorical column its category code.

* ``classifier`` (the paper's): a two-sample classifier is trained on real rows vs an *earlier*
  synthetic pool and applied to the *fresh* pool (scorer separation: it never scores rows it was
  trained on). ``r = 1 - |P(real|x) - 0.5|`` penalises rows that look fake and rows that look
  like copies of training rows.
* ``realism``: ``r = P(real|x)``.
* ``logodds``: ``r = log P(real|x) - log P(synthetic|x)``. With balanced classes this estimates
  ``log p_data(x) / p_model(x)``, so the KL-regularised optimum ``pi_ref(x) exp(r(x) / beta)`` is
  ``p_data`` at ``beta = 1``.
* ``dcr``: ``r = min(DCR, tau) / tau``: L1 distance to the closest training row on range-scaled
  numbers and one-hot categories, capped at the pool's median ``tau``. Classifier-free; rewards
  rows that are not near-copies.
* ``histogram``: classifier-free ``log p_data(x) / p_model(x)`` of a log-linear model of the
  one- and two-column frequencies: per column ``log f_real(bin) - log f_pool(bin)``, plus per pair
  of columns the log ratio of the joint frequencies less its two one-column terms. Built from
  counts over all real rows and the whole pool, so it is far less noisy than one classifier on a
  model the classifier can barely tell from the data; it sees only one- and two-column structure.
* a callable ``reward(real_df, synthetic_df) -> array`` of one finite float per synthetic row.
"""

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neighbors import NearestNeighbors

from tabgraa_sdv.codec import NumericColumn

REWARDS = ('classifier', 'realism', 'logodds', 'dcr', 'histogram')
_EPS = 1e-4
_MAX_CATEGORIES = 255  # HistGradientBoosting's limit on a categorical feature's cardinality


class TokenFeatures:
    """Numeric features of token rows: grid positions for numbers, codes for categories."""

    def __init__(self, codec):
        self.codec = codec
        self.categorical = np.array([not isinstance(c, NumericColumn) for c in codec.columns])
        # Categorical columns the classifiers treat as such; a wider one goes in as its code.
        self.classifier_categorical = np.array([
            is_cat and len(c.values) <= _MAX_CATEGORIES
            for is_cat, c in zip(self.categorical, codec.columns)
        ], dtype=bool)

    def transform(self, tokens):
        local = np.asarray(tokens) - self.codec.slot_start[None, :]
        columns = []
        for c, column in enumerate(self.codec.columns):
            codes = local[:, self.codec.column_slots[c]]
            if isinstance(column, NumericColumn):
                value = self._grid_value(column, codes)
            else:
                value = codes[:, 0].astype(np.float64)
            columns.append(value)
        return np.column_stack(columns) if columns else np.zeros((len(local), 0))

    @staticmethod
    def _grid_value(column, codes):
        bins = codes[:, 0]
        nan = bins == column.nan_token if column.has_nan else np.zeros(len(bins), bool)
        if column.n_bins == 0:
            return np.full(len(bins), np.nan)
        offset = np.zeros(len(bins), np.int64)
        for j in range(column.n_offset):
            offset = offset * column.base + codes[:, 1 + j]
        safe = np.where(nan, 0, bins)
        value = (column.starts[safe] + offset).astype(np.float64)
        value[nan] = np.nan  # HistGradientBoosting routes missing values natively
        return value

    def scaled_onehot(self, X, reference):
        """Range-scaled numbers (missing = -1) and one-hot categories, for L1 distances."""
        parts = []
        for j, is_cat in enumerate(self.categorical):
            if is_cat:
                n_codes = len(self.codec.columns[j].values)
                parts.append(np.eye(n_codes, dtype=np.float32)[X[:, j].astype(int)])
            else:
                lo, hi = np.nanmin(reference[:, j], initial=0), np.nanmax(reference[:, j], initial=1)
                scaled = (X[:, j] - lo) / max(hi - lo, 1e-12)
                parts.append(np.nan_to_num(scaled, nan=-1.0).astype(np.float32)[:, None])
        return np.concatenate(parts, axis=1)


def two_sample_classifier(real_X, synthetic_X, categorical, seed=0, **params):
    """P(real | x) model on balanced classes (real rows subsampled to the pool's size).
    ``params`` override the gradient-boosting settings below (probes compare them)."""
    rng = np.random.default_rng(seed)
    n = min(len(real_X), len(synthetic_X))
    real_X = real_X[rng.choice(len(real_X), n, replace=False)]
    synthetic_X = synthetic_X[rng.choice(len(synthetic_X), n, replace=False)]
    X = np.concatenate([real_X, synthetic_X])
    # A column missing in every row (an all-missing column) breaks the classifier's binning;
    # it carries no signal, so it becomes a constant. Prediction treats its NaN as missing.
    X[:, np.isnan(X).all(axis=0)] = 0.0
    y = np.concatenate([np.ones(n), np.zeros(n)])
    classifier = HistGradientBoostingClassifier(**{
        'categorical_features': categorical if categorical.any() else None,
        'max_iter': 200, 'learning_rate': 0.1, 'early_stopping': True,
        'validation_fraction': 0.1, 'random_state': seed, **params})
    return classifier.fit(X, y)


def classifier_reward(p_real):
    return 1.0 - np.abs(p_real - 0.5)


def realism_reward(p_real):
    return p_real


def logodds_reward(p_real):
    p = np.clip(p_real, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def capped_weights(log_weights, clip_quantile=0.99):
    """``exp(log_weights)``, with the log-weights capped at their ``clip_quantile`` quantile
    ('lower': a value some row has, not one interpolated towards an outlier) and shifted so the
    largest weight is 1 (no overflow, no all-zero underflow). A few rows the classifier is sure
    about would otherwise take most of the draws."""
    log_weights = np.asarray(log_weights, dtype=np.float64)
    log_weights = np.minimum(log_weights,
                             np.quantile(log_weights, clip_quantile, method='lower'))
    return np.exp(log_weights - log_weights.max())


def distance_to_closest(reference, query):
    """L1 distance from each query row to its nearest reference row."""
    neighbours = NearestNeighbors(n_neighbors=1, metric='manhattan').fit(reference)
    return neighbours.kneighbors(query)[0][:, 0]


def dcr_reward(distances):
    tau = np.median(distances)
    if tau <= 0:
        return (distances > 0).astype(np.float64)
    return np.minimum(distances, tau) / tau


def histogram_bins(real_X, X, categorical, n_bins):
    """Each value's bin: a category's code, or a number's bin among ``n_bins`` quantile bins of
    the real column (missing values a bin of their own). Returns the bins of ``real_X`` and
    ``X`` and each column's number of bins."""
    real_bins, bins, sizes = [], [], []
    for j, is_cat in enumerate(categorical):
        if is_cat:
            r, x = real_X[:, j].astype(np.int64), X[:, j].astype(np.int64)
            size = int(max(r.max(initial=0), x.max(initial=0))) + 1
        else:
            real = real_X[:, j]
            quantiles = np.linspace(0, 1, n_bins + 1)[1:-1]
            edges = (np.unique(np.nanquantile(real, quantiles)) if not np.isnan(real).all()
                     else np.zeros(0))
            r = np.searchsorted(edges, real, side='right')
            x = np.searchsorted(edges, X[:, j], side='right')
            r[np.isnan(real)] = x[np.isnan(X[:, j])] = len(edges) + 1
            size = len(edges) + 2
        real_bins.append(r)
        bins.append(x)
        sizes.append(size)
    return np.column_stack(real_bins), np.column_stack(bins), sizes


def column_pairs(real_bins, bins, sizes, categorical, max_pair_categories):
    """Each pair of columns ``(j, k)`` with its cell codes in ``real_bins`` and ``bins`` and its
    number of cells; categorical columns of more than ``max_pair_categories`` categories are
    left out (their pairs' cells would be too thinly filled)."""
    usable = [j for j, size in enumerate(sizes)
              if not categorical[j] or size <= max_pair_categories]
    for a, j in enumerate(usable):
        for k in usable[a + 1:]:
            yield (j, k, real_bins[:, j] * sizes[k] + real_bins[:, k],
                   bins[:, j] * sizes[k] + bins[:, k], sizes[j] * sizes[k])


def _log_ratio(real_codes, model_codes, codes, size, alpha):
    """Per row of ``codes``: log of the smoothed real frequency of its cell over the model's."""
    real = (np.bincount(real_codes, minlength=size) + alpha) / (len(real_codes) + alpha * size)
    model = (np.bincount(model_codes, minlength=size) + alpha) / (len(model_codes) + alpha * size)
    return np.log(real[codes]) - np.log(model[codes])


def histogram_reward(real_X, X, categorical, model_X=None, n_bins=20, pair_bins=6,
                     max_pair_categories=16, alpha=0.5):
    """Log-linear estimate of ``log p_data(x) / p_model(x)`` for the pool ``X`` (module doc).
    The model's frequencies are counted on ``model_X`` (default: ``X`` itself).

    One-column terms use ``n_bins`` quantile bins per number; pair terms use ``pair_bins`` (a
    pair's cells must stay well filled by a pool of a few thousand rows), and skip categorical
    columns with more than ``max_pair_categories`` categories. ``alpha`` is the add-alpha
    smoothing of every count, so a cell the pool or the data lacks gives a finite ratio."""
    n = len(X)
    both = X if model_X is None else np.concatenate([X, model_X])
    model_rows = slice(0, n) if model_X is None else slice(n, None)

    def log_ratio(real_codes, codes, size):
        return _log_ratio(real_codes, codes[model_rows], codes[:n], size, alpha)

    real_bins, bins, sizes = histogram_bins(real_X, both, categorical, n_bins)
    reward = np.zeros(n)
    for j, size in enumerate(sizes):
        reward += log_ratio(real_bins[:, j], bins[:, j], size)
    real_coarse, coarse, coarse_sizes = histogram_bins(real_X, both, categorical, pair_bins)
    one_way = {}
    for j, k, real_joint, joint, size in column_pairs(real_coarse, coarse, coarse_sizes,
                                                      categorical, max_pair_categories):
        for c in (j, k):
            if c not in one_way:
                one_way[c] = log_ratio(real_coarse[:, c], coarse[:, c], coarse_sizes[c])
        reward += log_ratio(real_joint, joint, size) - one_way[j] - one_way[k]
    return reward


def binned_fidelity(real_X, X, categorical, n_bins=20, pair_bins=6, max_pair_categories=16):
    """How alike two samples' one- and two-column distributions are, on the bins of
    :func:`histogram_reward`: ``1 - total variation distance`` per column (``n_bins``) and per
    pair of columns (``pair_bins``; categorical columns of more than ``max_pair_categories``
    categories left out of pairs). Returns ``(columns, pairs, score)``: the two means and their
    mean, 1 for identical histograms, in the spirit of SDMetrics' column shapes and column pair
    trends but computed straight off the token features."""
    real_bins, bins, sizes = histogram_bins(real_X, X, categorical, n_bins)

    def similarity(real_codes, codes, size):
        real = np.bincount(real_codes, minlength=size) / len(real_codes)
        synthetic = np.bincount(codes, minlength=size) / len(codes)
        return 1.0 - 0.5 * np.abs(real - synthetic).sum()

    columns = [similarity(real_bins[:, j], bins[:, j], size) for j, size in enumerate(sizes)]
    pairs = [similarity(real_joint, joint, size) for _, _, real_joint, joint, size
             in column_pairs(*histogram_bins(real_X, X, categorical, pair_bins), categorical,
                             max_pair_categories)]
    column_score = float(np.mean(columns)) if columns else 1.0
    pair_score = float(np.mean(pairs)) if pairs else column_score
    return column_score, pair_score, (column_score + pair_score) / 2


def validate_reward_values(values, n_rows):
    """Check what a user reward returned: one finite float per synthetic row."""
    try:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f'The reward callable must return an array of floats, got {type(values).__name__}.'
        ) from error
    if len(values) != n_rows:
        raise ValueError(
            f'The reward callable returned {len(values)} values for {n_rows} synthetic rows; '
            'return one value per row.'
        )
    if not np.isfinite(values).all():
        raise ValueError('The reward callable returned NaN or infinite values; return finite floats.')
    return values
