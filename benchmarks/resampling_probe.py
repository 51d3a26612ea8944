"""Probe behind density-ratio resampling: discriminator-weighted resampling of SFT samples.

    python benchmarks/resampling_probe.py magic 0             # table, seed; a line a variant
    python benchmarks/resampling_probe.py magic 0 --controls  # and the noise controls

Loads the cached annealed SFT model of ``benchmarks/alignment.py`` (``sft_synthesizer``: the
current code's, trained on first use; docs/alignment.md's table was made with the models before
the attention-mask fix, ``benchmarks/work/sft_<table>_seed<seed>_anneal3.pkl``), draws ``len(train)`` rows to train a
real-vs-model classifier on and 4 x ``len(test)`` candidate rows, and scores (against the test
split, ``tabgraa_sdv.metrics.evaluate``) the first ``len(test)`` candidates ('plain') and
``len(test)`` candidates drawn without replacement from the first k x ``len(test)`` in
proportion to ``ratio ** gamma`` (ratio = the classifier's odds, capped at its 99% quantile).
``--controls`` also scores three uniformly drawn subsets of the same candidates (the noise of
the plain row) and, after a fresh ``reset_sampling()``, four consecutive blocks of ``len(test)``
rows (two samples of ``len(test)``, then the first and last ``len(test)`` of one of 4 x).
Superseded by ``resampling_factor`` (one of k candidates per row) and its benchmark rows; kept
because docs/alignment.md quotes its table.
"""
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from alignment import load_table, sft_synthesizer
from tabgraa_sdv.metrics import TableEncoder, evaluate


ROOT = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'


def main(name, seed, root=ROOT, controls=False):
    train, test, metadata, info = load_table(root, name)
    synthesizer, _ = sft_synthesizer(root, name, seed, anneal_epochs=3)
    synthesizer.reset_sampling()
    n = len(test)
    previous, fresh = synthesizer.sample(len(train)), synthesizer.sample(4 * n)
    encoder = TableEncoder().fit(train)
    m = min(len(train), len(previous))
    X = np.concatenate([encoder.ordinal(train.sample(m, random_state=seed)),
                        encoder.ordinal(previous.sample(m, random_state=seed))])
    y = np.r_[np.ones(m), np.zeros(m)]
    categorical = encoder.categorical_mask
    classifier = HistGradientBoostingClassifier(
        categorical_features=categorical if categorical.any() else None, max_iter=200,
        early_stopping=True, validation_fraction=0.1, random_state=seed).fit(X, y)
    p = np.clip(classifier.predict_proba(encoder.ordinal(fresh))[:, 1], 1e-4, 1 - 1e-4)
    ratio = p / (1 - p)
    rng = np.random.default_rng(seed)

    def score(label, rows):
        scores = evaluate(train, test, rows.reset_index(drop=True), metadata, info['target'],
                          info['task'], seed=seed)
        print(label, {k: round(v, 4) for k, v in scores.items()}, flush=True)

    score('plain', fresh.iloc[:n])
    for k in (2, 4):
        for gamma in (0.5, 1.0):
            weights = ratio[:k * n] ** gamma
            weights = np.minimum(weights, np.quantile(weights, 0.99))
            chosen = rng.choice(k * n, n, replace=False, p=weights / weights.sum())
            score(f'k={k},gamma={gamma}', fresh.iloc[chosen])
    if not controls:
        return
    uniform = np.random.default_rng(seed)
    for i in range(3):
        score(f'uniform{i}', fresh.iloc[uniform.choice(4 * n, n, replace=False)])
    synthesizer.reset_sampling()
    first, second, block = (synthesizer.sample(n), synthesizer.sample(n),
                            synthesizer.sample(4 * n))
    for label, rows in [('first', first), ('second', second),
                        ('4n-first-n', block.iloc[:n]), ('4n-last-n', block.iloc[-n:])]:
        score(label, rows)


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]), controls='--controls' in sys.argv[3:])
