"""Label models: a column redrawn from a gradient-boosting model of it given the others.

A downstream user often trains a classifier on the synthetic table (the TSTR protocol: train
on synthetic, test on real). What that classifier learns is the synthetic table's
``p(label | other columns)``. The compact language model's own conditional falls short of a
gradient-boosting model's on tables like magic and shoppers (docs/benchmarks.md, "Where TSTR
stands"), and neither longer training, more bins, a wider model nor a loss weight closed the gap.

So for a *label column* the language model writes the row as usual and the label's token is then
redrawn from ``p_hat(label | the row's other columns)``: the mean of ``n_models``
``HistGradientBoostingClassifier`` fits, each on a random 80% of the real training rows, with
early stopping on held-out rows. Relabelled by the mean of 5 fits, the real training rows
scored a higher TSTR than by one fit on 3 of 4 tables (``benchmarks/label_probe.py``).
Subsamples, not bootstraps: a bootstrap's repeated rows fall on both sides of early stopping's
validation split, so its fits stop late, come out overconfident and shift the label's
marginal (docs/backbone-compact.md, "Label columns"). Sampling from ``p_hat`` (not taking its
argmax) keeps the label's marginal and its noise: the joint stays a sample, not a cleaned-up
table.

A *number written in several tokens* (a bin and offset digits, e.g. beijing's ``pm2.5``) is
redrawn from a regression model instead (:class:`NumericLabel`): its value, mapped to normal
scores, is predicted by the mean of ``n_models`` ``HistGradientBoostingRegressor`` fits (each on
all folds but one of ``n_models`` folds), and a residual is drawn from the out-of-fold residuals
of training rows with a similar prediction. So the noise around the prediction is the data's,
and it may grow with the prediction (heteroscedastic), as pollution does.

Features are the token grid's (the same :class:`tabgraa_sdv.rewards.TokenFeatures` as the
rewards and the resampler), so no decoding happens. Like the resampler, the fitted trees hold
no rows (the regression keeps quantiles of its residuals, not the residuals), and nothing here
enters the language model's training.
"""

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from sklearn.preprocessing import QuantileTransformer

from tabgraa_sdv import rewards as R

# Fits averaged into p_hat, and the share of the rows each one learns from.
N_MODELS = 5
SUBSAMPLE = 0.8
# A numeric label's residuals: bands of similar predictions, and the quantiles kept of each.
RESIDUAL_BANDS = 20
RESIDUAL_QUANTILES = 201


def _boosting_options(seed, overrides=None):
    """The label fits' boosting settings: early stopping on a tenth of their rows, and any
    ``overrides``."""
    return {**dict(max_iter=1000, learning_rate=0.1, early_stopping=True, validation_fraction=0.1,
                   n_iter_no_change=20, random_state=seed), **(overrides or {})}


def _check_boosting(boosting):
    """``boosting``: a dict of settings both boosting estimators take, other than the seed
    and the categorical columns (the model sets those)."""
    if boosting is None:
        return {}
    if not isinstance(boosting, dict):
        raise ValueError(f'boosting must be a dict of HistGradientBoosting settings, got '
                         f'{boosting!r}.')
    allowed = (set(HistGradientBoostingClassifier().get_params())
               & set(HistGradientBoostingRegressor().get_params())
               - {'random_state', 'categorical_features'})
    unknown = sorted(set(boosting) - allowed)
    if unknown:
        raise ValueError(f'boosting: {unknown} are not settings of both HistGradientBoosting '
                         f'estimators that can be set here (the seed comes from seed, the '
                         f'categorical columns from the codec); choose from {sorted(allowed)}.')
    return dict(boosting)


class LabelModel:
    """Redraws the token of each label column from a bagged gradient-boosting classifier.

    Args:
        codec: the fitted :class:`tabgraa_sdv.codec.ColumnarCodec`.
        columns: names of the label columns. One written as one token (a categorical or
            boolean column, or a number with at most ``2 * max_base`` grid values) is
            classified; a number written in several tokens is regressed
            (:class:`NumericLabel`).
        n_models: fits averaged per label column (1: one fit on every row; for a number,
            on half of them, the other half giving the residuals).
        bootstrap: draw each fit's rows with replacement (as many as there are) instead of
            a subsample; kept for the comparison in ``benchmarks/label_probe.py``.
        seed: seed of the subsamples and the classifiers.
        boosting: settings of the boosting fits that replace the defaults (e.g.
            ``{'learning_rate': 0.05}``); kept for the comparison in
            ``benchmarks/label_draw_probe.py``.
    """

    def __init__(self, codec, columns, n_models=N_MODELS, bootstrap=False, seed=0,
                 boosting=None):
        self.features = R.TokenFeatures(codec)
        self.codec, self.columns = codec, list(columns)
        self.n_models, self.bootstrap, self.seed = n_models, bootstrap, seed
        self.boosting = _check_boosting(boosting)
        names = codec.column_names
        self.index, self.slot, self.numeric = [], [], []
        for name in self.columns:
            if name not in names:
                raise ValueError(
                    f"label_columns names '{name}', which the model does not write (its "
                    f'columns: {names}); name one of the modelled columns.')
            c = names.index(name)
            numeric = len(codec.column_slots[c]) > 1  # only a number takes several tokens
            if numeric and bootstrap:
                raise ValueError(
                    f"label_columns: column '{name}' is a number written in several tokens, "
                    'whose regression fits use folds; bootstrap applies to one-token labels only.')
            self.index.append(c)
            self.slot.append(int(codec.column_slots[c][0]))
            self.numeric.append(numeric)
        self.models = []

    def __setstate__(self, state):
        # One pickled before numeric labels existed has one-token labels only; one pickled
        # before ``boosting`` existed used the defaults.
        self.__dict__.update({'numeric': [False] * len(state['index']), 'boosting': {},
                              **state})

    def fit(self, tokens):
        """Fit each label's models on real token rows ``[rows, n_slots]``."""
        X = self.features.transform(tokens)
        # A column missing in every row breaks the classifier's binning and carries nothing.
        X[:, np.isnan(X).all(axis=0)] = 0.0
        rng = np.random.default_rng(self.seed)
        self.models = []
        for c, slot, numeric in zip(self.index, self.slot, self.numeric):
            others = self._others(c)
            if numeric:
                self.models.append(NumericLabel(self.codec.columns[c], self.n_models, self.seed,
                                                self.boosting)
                                   .fit(X[:, others], self._local(tokens, c),
                                        self.features.classifier_categorical[others]))
                continue
            y = np.asarray(tokens)[:, slot] - self.codec.slot_start[slot]
            codes, fits = np.unique(y), []
            if len(codes) > 1:
                for m in range(self.n_models):
                    rows = self._rows(len(y), rng)
                    if len(np.unique(y[rows])) < 2:  # a rare label missed by the draw
                        rows = np.arange(len(y))
                    fits.append(self._classifier(others, m).fit(X[rows][:, others], y[rows]))
            self.models.append((fits, codes))
        return self

    def _rows(self, n, rng):
        if self.n_models == 1:
            return np.arange(n)
        if self.bootstrap:
            return rng.choice(n, n)
        return rng.choice(n, int(SUBSAMPLE * n), replace=False)

    def _others(self, c):
        return np.flatnonzero(np.arange(len(self.codec.columns)) != c)

    def _classifier(self, others, m):
        categorical = self.features.classifier_categorical[others]
        return HistGradientBoostingClassifier(
            categorical_features=categorical if categorical.any() else None,
            **_boosting_options(self.seed + m, self.boosting))

    def _local(self, tokens, c):
        """Column ``c``'s local codes ``[rows, its slots]``."""
        slots = self.codec.column_slots[c]
        return np.asarray(tokens)[:, slots] - self.codec.slot_start[slots]

    def probabilities(self, tokens, k):
        """``p_hat`` of label column ``k`` for each token row: ``([rows, classes], codes)``."""
        if self.numeric[k]:
            raise ValueError(f"label column '{self.columns[k]}' is a number, regressed, not "
                             'classified: it has no class probabilities.')
        fits, codes = self.models[k]
        if not fits:  # one value in the training rows: it is certain
            return np.ones((len(tokens), 1)), codes
        X = self.features.transform(tokens)[:, self._others(self.index[k])]
        p = np.zeros((len(tokens), len(codes)))
        for model in fits:
            # A fit's rows can miss a rare class; its columns line up through classes_.
            p[:, np.searchsorted(codes, model.classes_)] += model.predict_proba(X)
        return p / len(fits), codes

    def redraw(self, tokens, generator, fixed_slots=()):
        """Token rows with every label column (not in ``fixed_slots``, the conditions)
        redrawn from ``p_hat``, one uniform per row and label from ``generator``."""
        tokens = np.array(tokens, dtype=np.int64, copy=True)
        fixed = set(int(s) for s in fixed_slots)
        for k, (c, slot) in enumerate(zip(self.index, self.slot)):
            if fixed & set(int(s) for s in self.codec.column_slots[c]):
                continue  # a condition is kept exactly
            u = torch.rand(len(tokens), generator=generator, device=generator.device)
            if self.numeric[k]:
                X = self.features.transform(tokens)[:, self._others(c)]
                slots = self.codec.column_slots[c]
                tokens[:, slots] = (self.models[k].redraw(X, self._local(tokens, c),
                                                          u.cpu().numpy())
                                    + self.codec.slot_start[slots])
                continue
            p, codes = self.probabilities(tokens, k)
            cdf = np.cumsum(p, axis=1)
            pick = (cdf < u.cpu().numpy()[:, None] * cdf[:, -1:]).sum(axis=1)
            tokens[:, slot] = codes[pick.clip(max=len(codes) - 1)] + self.codec.slot_start[slot]
        return tokens


class NumericLabel:
    """``p_hat(y | x)`` of a number ``y``: a boosted prediction plus a residual of the data's.

    The value's grid index is mapped to normal scores ``z`` (a ``QuantileTransformer``), so a
    skewed number (pm2.5 runs from 0 to near 1,000 with most rows below 150) is regressed on a
    symmetric scale. ``n_models`` regressors, each fitted on all of ``n_models`` folds but one,
    give every training row an out-of-fold prediction and its residual. Rows are cut into
    ``RESIDUAL_BANDS`` bands of that prediction, and each band keeps ``RESIDUAL_QUANTILES``
    quantiles of its residuals. A new row's ``z`` is the mean of the fits' predictions plus a
    residual drawn by inverse CDF from its band's quantiles; it maps back to the grid and
    rounds to the nearest grid point. A row the language model wrote as missing
    stays missing: the share of missing values is the language model's.
    """

    def __init__(self, column, n_models=N_MODELS, seed=0, boosting=None):
        self.column, self.n_models, self.seed = column, n_models, seed
        self.boosting = boosting or {}
        self.fits, self.scale, self.band_edges, self.residuals = [], None, None, None
        self.constant = 0

    def fit(self, X, codes, categorical):
        """Fit on feature rows ``X`` and the column's local codes ``[rows, slots]``."""
        k, nan = self.column.grid_of_codes(codes)
        X, k = X[~nan], k[~nan].astype(np.float64)
        self.fits = []
        if len(np.unique(k)) < 2:  # one value (or none): it is certain
            self.constant = int(k[0]) if len(k) else 0
            return self
        self.scale = QuantileTransformer(n_quantiles=min(1000, len(k)),
                                         output_distribution='normal',
                                         random_state=self.seed).fit(k[:, None])
        z = self.scale.transform(k[:, None])[:, 0]
        # One fit per fold left out, of max(2, n_models) folds: with n_models >= 2 every row
        # gets an out-of-fold prediction; with 1, the half its fit left out.
        folds = KFold(max(2, self.n_models), shuffle=True, random_state=self.seed)
        predicted = np.full(len(z), np.nan)
        for m, (fit_rows, held_out) in enumerate(folds.split(X)):
            if m == self.n_models:
                break
            model = HistGradientBoostingRegressor(
                categorical_features=categorical if categorical.any() else None,
                **_boosting_options(self.seed + m, self.boosting)).fit(X[fit_rows], z[fit_rows])
            self.fits.append(model)
            predicted[held_out] = model.predict(X[held_out])
        scored = ~np.isnan(predicted)
        predicted, residual = predicted[scored], (z - predicted)[scored]
        self.band_edges = np.quantile(predicted, np.linspace(0, 1, RESIDUAL_BANDS + 1)[1:-1])
        band = np.searchsorted(self.band_edges, predicted, side='right')
        levels = np.linspace(0, 1, RESIDUAL_QUANTILES)
        self.residuals = np.stack([
            np.quantile(residual[band == b], levels) if (band == b).any()
            else np.quantile(residual, levels) for b in range(RESIDUAL_BANDS)])
        return self

    def redraw(self, X, codes, u):
        """The column's local codes with every non-missing value redrawn, one uniform per row
        in ``u``."""
        k, nan = self.column.grid_of_codes(codes)
        if not self.fits:
            drawn = np.full(len(k), self.constant)
        else:
            predicted = np.mean([model.predict(X) for model in self.fits], axis=0)
            band = np.searchsorted(self.band_edges, predicted, side='right')
            # Inverse CDF of the band's residuals, linear between its stored quantiles.
            position = u * (RESIDUAL_QUANTILES - 1)
            low = np.minimum(position.astype(np.int64), RESIDUAL_QUANTILES - 2)
            weight = position - low
            residual = ((1 - weight) * self.residuals[band, low]
                        + weight * self.residuals[band, low + 1])
            z = (predicted + residual)[:, None]
            drawn = self._snap(self.scale.inverse_transform(z)[:, 0])
        return self.column.codes_of_grid(np.where(nan, -1, drawn))

    def _snap(self, k):
        """The grid index nearest to each fractional ``k``. A number written in several tokens
        has contiguous bins over its whole grid, so every index in range can be written."""
        return np.clip(np.rint(k), 0, self.column.grid_max).astype(np.int64)
