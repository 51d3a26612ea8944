"""Which part of the SDV quality score do label columns move? Per-pair scores with the target.

    python benchmarks/quality_pairs_probe.py magic --seed 0 --root ../shared/datasets

Scores three tables against the test split with SDMetrics' ``QualityReport`` (what the
harness's ``quality_score`` is): the real training split, and the cached SFT synthesizer of
``benchmarks/alignment.py`` (revision-4 cache, ``resampling_factor=4`` as in the harness)
sampled as many rows as the training split, without and with a label model on the target
(``tabgraa_sdv.labels``, the default settings). Prints each table's score and properties, the
mean Column Pair Trends score of the pairs with the target and of the other pairs, and the
score of every pair with the target. Nothing is written; the output is the record.
"""

import argparse
import json
import warnings
from pathlib import Path

import pandas as pd

from alignment import add_resampling, load_table, sft_synthesizer
from tabgraa_sdv.labels import LabelModel

HERE = Path(__file__).parent


def target_pairs(report, target):
    pairs = report.get_details('Column Pair Trends')
    with_target = (pairs['Column 1'] == target) | (pairs['Column 2'] == target)
    other = pairs['Column 2'].where(pairs['Column 1'] == target, pairs['Column 1'])
    scores = pd.Series(pairs.loc[with_target, 'Score'].to_numpy(),
                       index=other[with_target].to_numpy())
    return scores, pairs.loc[~with_target, 'Score'].mean(), pairs.loc[with_target, 'Metric']


def main(argv=None):
    from sdmetrics.reports.single_table import QualityReport

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset')
    parser.add_argument('--root', default=str(HERE.parent.parent / 'shared' / 'datasets'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    warnings.simplefilter('ignore')
    train, test, metadata, info = load_table(args.root, args.dataset)
    target = info['target']
    table_metadata = json.loads((Path(args.root) / args.dataset / 'metadata.json').read_text())
    table_metadata = next(iter(table_metadata['tables'].values()))
    synthesizer, _ = sft_synthesizer(args.root, args.dataset, args.seed, anneal_epochs=3)
    lm = synthesizer._model
    tokens = lm.codec.encode(synthesizer._data_processor.transform(train))
    frames = {'real training rows': train}
    for labels in (False, True):
        lm.label_model = (LabelModel(lm.codec, [target], seed=args.seed).fit(tokens)
                          if labels else None)
        add_resampling(synthesizer, tokens, 4)
        synthesizer.reset_sampling()
        frames['SFT + labels' if labels else 'SFT'] = synthesizer.sample(len(train))
    per_pair = {}
    for name, frame in frames.items():
        report = QualityReport()
        report.generate(test, frame[test.columns], table_metadata, verbose=False)
        scores, other_mean, metrics = target_pairs(report, target)
        per_pair[name] = scores
        properties = report.get_properties().set_index('Property')['Score']
        print(f'{name}: quality {report.get_score():.4f}; '
              + '; '.join(f'{k} {v:.4f}' for k, v in properties.items())
              + f'; pairs with {target!r} ({", ".join(sorted(set(metrics)))}) '
              f'{scores.mean():.4f}, other pairs {other_mean:.4f}', flush=True)
    print(pd.DataFrame(per_pair).round(4).to_string())


if __name__ == '__main__':
    main()
