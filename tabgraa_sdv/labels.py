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

Features are the token grid's (the same :class:`tabgraa_sdv.rewards.TokenFeatures` as the
rewards and the resampler), so no decoding happens. Like the resampler, the fitted trees hold
no rows, and nothing here enters the language model's training.
"""

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from tabgraa_sdv import rewards as R

# Fits averaged into p_hat, and the share of the rows each one learns from.
N_MODELS = 5
SUBSAMPLE = 0.8


class LabelModel:
    """Redraws the token of each label column from a bagged gradient-boosting classifier.

    Args:
        codec: the fitted :class:`tabgraa_sdv.codec.ColumnarCodec`.
        columns: names of the label columns; each must be written as one token (a categorical
            or boolean column, or a number with at most ``max_base`` distinct values).
        n_models: fits averaged per label column (1: one fit on every row).
        bootstrap: draw each fit's rows with replacement (as many as there are) instead of
            a subsample; kept for the comparison in ``benchmarks/label_probe.py``.
        seed: seed of the subsamples and the classifiers.
    """

    def __init__(self, codec, columns, n_models=N_MODELS, bootstrap=False, seed=0):
        self.features = R.TokenFeatures(codec)
        self.codec, self.columns = codec, list(columns)
        self.n_models, self.bootstrap, self.seed = n_models, bootstrap, seed
        names = codec.column_names
        self.index, self.slot = [], []
        for name in self.columns:
            if name not in names:
                raise ValueError(
                    f"label_columns names '{name}', which the model does not write (its "
                    f'columns: {names}); name one of the modelled columns.')
            c = names.index(name)
            if len(codec.column_slots[c]) != 1:
                raise ValueError(
                    f"label_columns: column '{name}' is written as "
                    f'{len(codec.column_slots[c])} tokens (a number with more distinct values '
                    'than max_base); a label column must be categorical, boolean or a number '
                    'with at most max_base distinct values.')
            self.index.append(c)
            self.slot.append(int(codec.column_slots[c][0]))
        self.models = []

    def fit(self, tokens):
        """Fit each label's classifiers on real token rows ``[rows, n_slots]``."""
        X = self.features.transform(tokens)
        # A column missing in every row breaks the classifier's binning and carries nothing.
        X[:, np.isnan(X).all(axis=0)] = 0.0
        rng = np.random.default_rng(self.seed)
        self.models = []
        for c, slot in zip(self.index, self.slot):
            y = np.asarray(tokens)[:, slot] - self.codec.slot_start[slot]
            others = self._others(c)
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
            max_iter=1000, learning_rate=0.1, early_stopping=True, validation_fraction=0.1,
            n_iter_no_change=20, random_state=self.seed + m)

    def probabilities(self, tokens, k):
        """``p_hat`` of label column ``k`` for each token row: ``([rows, classes], codes)``."""
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
        for k, slot in enumerate(self.slot):
            if slot in fixed:
                continue  # a condition is kept exactly
            p, codes = self.probabilities(tokens, k)
            u = torch.rand(len(tokens), generator=generator, device=generator.device)
            cdf = np.cumsum(p, axis=1)
            pick = (cdf < u.cpu().numpy()[:, None] * cdf[:, -1:]).sum(axis=1)
            tokens[:, slot] = codes[pick.clip(max=len(codes) - 1)] + self.codec.slot_start[slot]
        return tokens
