"""How much of the alignment reward is signal? Two independent scorers, the same fresh pool.

    python benchmarks/reward_noise_probe.py magic shoppers --seeds 0

TabGRAA ranks a fresh pool of the model's rows by a reward and trains the policy to prefer the
top half over the bottom half. With the default ``logodds`` reward a gradient-boosting
classifier, trained on real rows against the *previous* pool, scores the fresh pool. When that
classifier can barely tell real from synthetic (held-out AUC 0.51-0.61 on the SFT models here),
its ranking may be mostly its own fitting noise, and then the preference pairs teach the policy
noise (docs/alignment.md).

This probe measures that directly. For each table and seed it draws, from the cached SFT model
of ``benchmarks/alignment.py`` (``sft_synthesizer``), one fresh pool and ``2 * K`` previous
pools, and for each reward *estimator* builds two replicates that share nothing but the fresh
pool and the real rows (disjoint previous pools, different classifier seeds). The two
replicates' rewards on the fresh pool give the estimator's **reliability**: their Spearman
correlation (the share of the ranking that is repeatable, not noise) and how often they put a
row in the same half (0.5: chance; 1: the same partition). Estimators:

* ``one scorer``: ``Scorer.reward`` as the aligner calls it by default (real rows subsampled
  to the pool's size against one previous pool);
* ``K scorers``: ``Scorer.reward`` with ``K`` previous pools, as the aligner calls it with
  ``scorers=K``: one classifier per pool, their ``P(real|x)`` averaged;
* ``one scorer, all rows``: one classifier on every real training row against ``K`` previous
  pools together (balanced by class weights);
* ``histogram``: the classifier-free ``histogram`` reward, with the model's frequencies
  counted on one previous pool (in ``fit`` they are counted on the fresh pool itself).

Rows go to ``benchmarks/results/reward_noise_probe.csv``; ``pool_auc`` is the held-out
detection AUC of the fresh pool (``Scorer.detection_auc``), how detectable the model is.
"""

import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingClassifier

from alignment import load_table, probe_parser, record_row, sft_synthesizer
from sdgym_benchmark import machine_description
from tabgraa_sdv import rewards as R
from tabgraa_sdv.alignment import Scorer
from tabgraa_sdv.sft import split_rows

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'reward_noise_probe.csv'
POOL_SIZE = 8192


def all_rows_scorer(scorer, fresh, previous_pools, seed):
    """One classifier on every real row against several previous pools, classes balanced."""
    X_syn = np.concatenate([scorer.features.transform(pool) for pool in previous_pools])
    X = np.concatenate([scorer.real_X, X_syn])
    X[:, np.isnan(X).all(axis=0)] = 0.0
    y = np.concatenate([np.ones(len(scorer.real_X)), np.zeros(len(X_syn))])
    categorical = scorer.features.classifier_categorical
    classifier = HistGradientBoostingClassifier(
        categorical_features=categorical if categorical.any() else None, max_iter=200,
        learning_rate=0.1, early_stopping=True, validation_fraction=0.1,
        class_weight='balanced', random_state=seed).fit(X, y)
    return R.logodds_reward(classifier.predict_proba(scorer.features.transform(fresh))[:, 1])


def with_seed(scorer, seed):
    """The scorer with its classifiers seeded by ``seed`` (a replicate's own)."""
    scorer.seed = seed
    return scorer


def estimators(k):
    """Reward estimators: ``(scorer, fresh pool, k previous pools, seed) -> rewards``. The
    first two are ``Scorer.reward`` itself, as the aligner calls it with ``scorers=1`` and
    ``scorers=k``."""
    return {
        'one scorer': lambda s, fresh, pools, seed: with_seed(s, seed).reward(fresh, pools[0]),
        f'{k} scorers': lambda s, fresh, pools, seed: with_seed(s, seed).reward(fresh, pools),
        'one scorer, all rows': all_rows_scorer,
        # classifier-free: the model's frequencies counted on one previous pool
        'histogram': lambda s, fresh, pools, seed: R.histogram_reward(
            s.real_X, s.features.transform(fresh), s.features.categorical,
            model_X=s.features.transform(pools[0])),
    }


def reliability(a, b):
    """Spearman correlation and the share of rows both put in the same half."""
    top_a, top_b = a > np.median(a), b > np.median(b)
    return float(spearmanr(a, b).statistic), float(np.mean(top_a == top_b))


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS)
    parser.add_argument('--scorers', type=int, default=4, help='K, previous pools per replicate')
    parser.add_argument('--estimators', nargs='+', help='labels to run (default: all)')
    args = parser.parse_args(argv)
    k = args.scorers
    chosen = {label: f for label, f in estimators(k).items()
              if args.estimators is None or label in args.estimators}
    if not chosen:
        parser.error(f'--estimators: choose among {list(estimators(k))}')
    for name in args.datasets:
        train, *_ = load_table(args.root, name)
        for seed in args.seeds:
            synthesizer, _ = sft_synthesizer(args.root, name, seed, anneal_epochs=3)
            lm = synthesizer._model
            tokens = lm.codec.encode(synthesizer._data_processor.transform(train))
            train_index, val_index = split_rows(len(tokens), 0.1, lm.seed)
            scorer = Scorer(lm.codec, tokens[train_index], tokens[val_index], seed=seed)
            lm.set_random_state(seed + 1)
            start = time.perf_counter()
            fresh = lm.sample_token_rows(POOL_SIZE)
            pools = [lm.sample_token_rows(POOL_SIZE) for _ in range(2 * k)]
            sample_seconds = time.perf_counter() - start
            pool_auc = scorer.detection_auc(fresh).auc
            for label, estimate in chosen.items():
                start = time.perf_counter()
                a = estimate(scorer, fresh, pools[:k], 1000 * seed)
                b = estimate(scorer, fresh, pools[k:], 1000 * seed + 500)
                seconds = (time.perf_counter() - start) / 2
                rho, same_half = reliability(a, b)
                row = {'dataset': name, 'seed': seed, 'estimator': label, 'k': k,
                       'spearman': rho, 'same_half': same_half, 'pool_auc': pool_auc,
                       'reward_sd': float(np.std(a)), 'high_low_gap': float(
                           np.mean(np.sort(a)[len(a) // 2:]) - np.mean(np.sort(a)[:len(a) // 2])),
                       'score_seconds': seconds, 'sample_seconds': sample_seconds,
                       'machine': machine_description()}
                record_row(args.results, row)


if __name__ == '__main__':
    main()
