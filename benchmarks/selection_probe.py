"""Which held-out score tracks test quality from round to round: detection AUC or fidelity?

    python benchmarks/selection_probe.py magic default --seeds 0 1 2

``fit`` keeps an alignment round when its pool's held-out detection AUC beats the best earlier
round's by more than one standard error. In the SDGym harness the rounds kept that way lowered
test quality in 6 of 7 cells (docs/benchmarks.md, revision 8). This probe runs
``benchmarks/alignment.py``'s cell (cached SFT model, the default settings, TabGRAA) and keeps
every round's pool. The pools are scored after the run, so the rounds themselves are exactly
the benchmark's. Each pool gets the two held-out scores ``fit`` can see: ``detection_auc`` and
``holdout_fidelity`` (``tabgraa_sdv.rewards.binned_fidelity`` against SFT's validation rows).
It also gets two test scores ``fit`` cannot see: ``test_quality`` (SDMetrics' quality report
of the whole pool, decoded, against the test split) and ``test_tree_detection`` (the harness's
tree detection AUC against the test split, at most 5,000 rows a side). One row per round goes
to ``benchmarks/results/selection_probe.csv``, and (table, seed) pairs already there are
skipped.
"""

import time
from pathlib import Path

import numpy as np
import pandas as pd

from alignment import SETTINGS, load_table, probe_parser, record_row, sft_synthesizer
from tabgraa_sdv.alignment import Aligner
from tabgraa_sdv.sft import split_rows

RESULTS = Path(__file__).parent / 'results' / 'selection_probe.csv'


def run_rounds(root, name, seed, train):
    """The benchmark's TabGRAA cell on ``train`` (the table's training rows); returns
    (history, {round: pool tokens}, synthesizer)."""
    synthesizer, _ = sft_synthesizer(root, name, seed, SETTINGS['anneal_epochs'],
                                     SETTINGS['code_revision'])
    lm = synthesizer._model
    tokens = lm.codec.encode(synthesizer._data_processor.transform(train))
    train_index, val_index = split_rows(len(tokens), 0.1, lm.seed)
    pools, evaluate = {}, Aligner._evaluate

    def keep_pool(self, round_, pool, *args, **kwargs):
        pools[round_] = np.array(pool)
        return evaluate(self, round_, pool, *args, **kwargs)

    options = {k: v for k, v in SETTINGS.items()
               if k not in ('anneal_epochs', 'code_revision', 'reward')}
    Aligner._evaluate = keep_pool
    try:
        aligner = lm.align(tokens[train_index], tokens[val_index], reward=SETTINGS['reward'],
                           objective='tabgraa', **options)
    finally:
        Aligner._evaluate = evaluate
    return aligner.history, pools, synthesizer


def main(argv=None):
    from tabgraa_sdv.metrics import evaluate

    args = probe_parser(__doc__, RESULTS, seeds=(0, 1, 2)).parse_args(argv)
    done = pd.read_csv(args.results) if args.results.exists() else None
    for name in args.datasets:
        train, test, metadata, info = load_table(args.root, name)
        for seed in args.seeds:
            if done is not None and ((done.dataset == name) & (done.seed == seed)).any():
                continue
            start = time.perf_counter()
            history, pools, synthesizer = run_rounds(args.root, name, seed, train)
            align_seconds = time.perf_counter() - start
            lm = synthesizer._model
            for row in history:
                pool = pools[row['round']]
                synthetic = synthesizer._data_processor.reverse_transform(lm.codec.decode(pool))
                scores = evaluate(train, test, synthetic, metadata, info['target'], info['task'],
                                  seed=seed, metrics=('quality_score', 'tree_detection_auc'))
                record_row(args.results, {
                    'dataset': name, 'seed': seed, 'round': row['round'],
                    'kept': bool(row['kept']), 'detection_auc': row['detection_auc'],
                    'detection_auc_se': row['detection_auc_se'],
                    'holdout_fidelity': row['holdout_fidelity'], 'pool_rows': len(pool),
                    'test_quality': scores['quality_score'],
                    'test_tree_detection': scores['tree_detection_auc'],
                    'align_seconds': round(align_seconds, 1),
                    'settings': str(SETTINGS),
                    'finished_at': pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds')})


if __name__ == '__main__':
    main()
