"""Where does one alignment round move the SDMetrics quality score? Columns, pairs, extremes.

    python benchmarks/round_quality_detail.py magic --seed 0 --reward histogram

Takes the cached SFT model of ``benchmarks/alignment.py``, runs one alignment round that is kept
whatever its held-out AUC (as ``benchmarks/round_probe.py`` does), and samples ``len(test)``
rows from the model before and after the round (each from a fresh sampler). For both it prints
the quality report's score, every column's shape score, the five pairs whose score fell most,
and each numeric column's range. For the pair that fell most it also prints SDMetrics' standalone
``ContingencySimilarity`` on the *real* column's bins. Nothing is written; the output is the
record.
"""

import argparse
import copy
import warnings
from pathlib import Path

import pandas as pd

from alignment import load_table, sft_synthesizer
from round_probe import keep_every_round
from tabgraa_sdv.sft import split_rows

HERE = Path(__file__).parent


def sample_and_report(synthesizer, test, table_metadata):
    from sdmetrics.reports.single_table import QualityReport

    synthesizer.reset_sampling()
    synthetic = synthesizer.sample(len(test))
    report = QualityReport()
    report.generate(test, synthetic, table_metadata, verbose=False)
    return synthetic, report


def main(argv=None):
    from sdmetrics.column_pairs import ContingencySimilarity

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset')
    parser.add_argument('--root', default=str(HERE.parent.parent / 'shared' / 'datasets'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--reward', default='histogram')
    parser.add_argument('--objective', default='tabgraa')
    parser.add_argument('--learning-rate', type=float, default=2e-5)
    args = parser.parse_args(argv)
    warnings.filterwarnings('ignore')
    train, test, metadata, _ = load_table(args.root, args.dataset)
    table_metadata = next(iter(metadata.to_dict()['tables'].values()))
    base, _ = sft_synthesizer(args.root, args.dataset, args.seed, anneal_epochs=3)
    before, report_before = sample_and_report(copy.deepcopy(base), test, table_metadata)

    aligned = copy.deepcopy(base)
    lm = aligned._model
    tokens = lm.codec.encode(aligned._data_processor.transform(train))
    train_index, val_index = split_rows(len(tokens), 0.1, lm.seed)
    keep_every_round()
    lm.align(tokens[train_index], tokens[val_index], reward=args.reward,
             objective=args.objective, rounds=1, patience=3, learning_rate=args.learning_rate)
    after, report_after = sample_and_report(aligned, test, table_metadata)

    print(f'quality_score: SFT {report_before.get_score():.4f}, '
          f'after one round {report_after.get_score():.4f}')
    shapes = pd.DataFrame({
        'SFT': report_before.get_details('Column Shapes').set_index('Column')['Score'],
        'round 1': report_after.get_details('Column Shapes').set_index('Column')['Score']})
    shapes['change'] = shapes['round 1'] - shapes['SFT']
    print(shapes.round(4).to_string())
    key = ['Column 1', 'Column 2', 'Metric']
    pairs = report_before.get_details('Column Pair Trends')[key + ['Score']].merge(
        report_after.get_details('Column Pair Trends')[key + ['Score']], on=key,
        suffixes=(' SFT', ' round 1'))
    pairs['change'] = pairs['Score round 1'] - pairs['Score SFT']
    print(pairs.sort_values('change').head(5).round(4).to_string(index=False))
    numeric = [c for c, m in table_metadata['columns'].items() if m['sdtype'] == 'numerical']
    print(pd.DataFrame({'test min': test[numeric].min(), 'test max': test[numeric].max(),
                        'SFT min': before[numeric].min(), 'SFT max': before[numeric].max(),
                        'round 1 min': after[numeric].min(),
                        'round 1 max': after[numeric].max()}).round(2).to_string())
    worst = pairs.sort_values('change').iloc[0]
    names = [worst['Column 1'], worst['Column 2']]
    continuous = [n for n in names if n in numeric]
    if worst['Metric'] == 'ContingencySimilarity' and continuous:
        for label, synthetic in (('SFT', before), ('round 1', after)):
            score = ContingencySimilarity.compute(test[names], synthetic[names],
                                                  continuous_column_names=continuous)
            print(f'{names[0]} x {names[1]} on the real bins, {label}: {score:.4f}')


if __name__ == '__main__':
    main()
