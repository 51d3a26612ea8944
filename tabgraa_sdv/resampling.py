"""Density-ratio resampling: draw ``factor`` candidate rows per row asked for, keep one.

After fitting, a classifier learns to tell the real rows from the fitted model's own samples
(the ``logodds`` reward's two-sample classifier, with larger trees). Its odds
``P(real|x) / P(model|x)`` estimate the density ratio ``p_data(x) / p_model(x)`` (balanced
classes). Sampling then draws ``factor`` candidates for every row and keeps one of them with
probability proportional to that ratio: sampling-importance-resampling, which moves the
output from ``p_model`` towards ``p_data`` as ``factor`` grows (discriminator rejection
sampling, Azadi et al. 2019, without the rejection loop: every output row costs exactly
``factor`` drawn rows).

Candidates for one output row share its conditions (the prefix tokens are repeated), so the
ratio between them is the conditional one and conditional sampling stays exact. The classifier
holds no rows, only its trees; nothing here enters the language model's training.
"""

import numpy as np
import torch

from tabgraa_sdv import rewards as R

# Fewer real rows than this give the classifier too little to learn from: no resampling.
MIN_RESAMPLING_ROWS = 20
# Real rows (and as many model rows) the classifier learns from: enough for a stable ratio,
# bounded so fitting it stays a few seconds on large tables.
RESAMPLER_ROWS = 50_000
# The classifier's trees have up to 127 leaves, where the reward classifier's have 31 (the
# gradient-boosting default): scored against rows no part of the fit saw, the larger trees
# gave a less detectable resampled sample on magic, shoppers and default
# (benchmarks/resampler_holdout_probe.py; docs/alignment.md, "The resampler's classifier").
RESAMPLER_CLASSIFIER = {'max_leaf_nodes': 127}


class RatioResampler:
    """Chooses one of ``factor`` candidate token rows per output row, by estimated density ratio.

    Args:
        codec: the fitted :class:`tabgraa_sdv.codec.ColumnarCodec` of the token rows.
        factor: candidates drawn per output row (an int >= 2).
        seed: seed of the classifier.
    """

    def __init__(self, codec, factor, seed=0):
        self.features = R.TokenFeatures(codec)
        self.factor, self.seed = factor, seed
        self.classifier = None

    def fit(self, real_tokens, model_tokens):
        """Learn ``P(real | x)`` from real token rows and the fitted model's token rows."""
        self.classifier = R.two_sample_classifier(
            self.features.transform(real_tokens), self.features.transform(model_tokens),
            self.features.classifier_categorical, self.seed, **RESAMPLER_CLASSIFIER)
        return self

    def log_ratio(self, tokens):
        """Estimated ``log p_data(x) / p_model(x)`` of each token row."""
        p_real = self.classifier.predict_proba(self.features.transform(tokens))[:, 1]
        return R.logodds_reward(p_real)

    def choose(self, candidates, generator):
        """``candidates``: ``[factor * n, slots]``, candidate ``j`` of output row ``i`` at
        ``j * n + i``. Returns ``[n, slots]``: per row one candidate, drawn with probability
        proportional to its (capped) ratio, using one uniform per row from ``generator``."""
        n = len(candidates) // self.factor
        weights = R.capped_weights(self.log_ratio(candidates)).reshape(self.factor, n)
        cdf = np.cumsum(weights, axis=0)
        u = torch.rand(n, generator=generator, device=generator.device).cpu().numpy()
        pick = (cdf < u * cdf[-1]).sum(axis=0).clip(max=self.factor - 1)
        return candidates[pick * n + np.arange(n)]
