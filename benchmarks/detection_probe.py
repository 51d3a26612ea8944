"""Which columns give a synthetic table away? The tree detector, one column and all-but-one at a time.

    python benchmarks/detection_probe.py magic --seeds 0 --harness TabGRAA

``tree_detection_auc`` (gradient boosting, 3-fold cross-validated AUC; ``tabgraa_sdv.metrics``)
says how far a sample is from the data, not where. This probe fits what an SDGym harness cell
fits (``fit_phases.harness_fit``, the current code revision's settings for the table), samples as
many rows as the training split and runs the same detector against the training rows:

- on every column (``columns='all'``),
- on each column alone (``'only <column>'``): how far that column's own distribution is off,
- on every column but one (``'without <column>'``): how much of the whole detector's edge that
  column carries, alone or in its dependence on the others.

The training split is used, not the test split, because it is ten times larger: a detector on
17,118 rows a side separates what one on magic's 1,902 test rows only hints at. With
``--real-halves`` the same runs also score the training split's two random halves against
each other, the floor a detector reaches on rows of one distribution. One row per table,
seed, model and column set goes to ``benchmarks/results/detection_probe.csv``; the sample is
kept in ``benchmarks/work/`` for a closer look.
"""

import time
from pathlib import Path

import numpy as np

from alignment import load_table, probe_parser, record_row
from fit_phases import harness_fit, harness_kwargs
from sdgym_benchmark import TABGRAA_CODE_REVISION, check_tabgraa_options, machine_description
from tabgraa_sdv.metrics import TableEncoder, tree_detection_auc

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'detection_probe.csv'
WORK = HERE / 'work'


def column_sets(columns):
    """``(label, columns)`` for every column, each column alone and all but each column."""
    yield 'all', list(columns)
    for column in columns:
        yield f'only {column}', [column]
    for column in columns:
        yield f'without {column}', [c for c in columns if c != column]


def detection_by_columns(real, synthetic, seed):
    """``{label: detection AUC}`` for each of :func:`column_sets` (the encoder is fit on the
    real rows of that set, as ``evaluate`` fits it on the training rows)."""
    scores = {}
    for label, columns in column_sets(real.columns):
        encoder = TableEncoder().fit(real[columns])
        scores[label] = tree_detection_auc(encoder, real[columns], synthetic[columns], seed=seed)
    return scores


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS)
    parser.add_argument('--harness', choices=['TabGRAA', 'TabGRAA-SFT'], default='TabGRAA')
    parser.add_argument('--options', default=None, metavar='JSON',
                        help='overrides of the harness settings (as --tabgraa-options)')
    parser.add_argument('--real-halves', action='store_true',
                        help="also score the training split's two halves against each other")
    args = parser.parse_args(argv)
    options = check_tabgraa_options(args.options) if args.options else None
    for name in args.datasets:
        train, _, metadata, info = load_table(args.root, name)
        for seed in args.seeds:
            rows = {}
            if args.real_halves:
                order = np.random.default_rng(seed).permutation(len(train))
                half = len(train) // 2
                rows['real halves'] = (train.iloc[order[:half]].reset_index(drop=True),
                                       train.iloc[order[half:2 * half]].reset_index(drop=True))
            synthesizer, fit_seconds = harness_fit(metadata, train, seed,
                                                   harness_kwargs(args.harness, info, options))
            synthetic = synthesizer.sample(len(train))
            WORK.mkdir(parents=True, exist_ok=True)
            tag = ''.join(c for c in (args.options or '') if c.isalnum() or c == '_')
            synthetic.to_csv(WORK / f'detection_probe_{name}_seed{seed}_{args.harness}{tag}.csv',
                             index=False)
            model = f'harness {args.harness}' + (f' {args.options}' if args.options else '')
            rows[model] = (train, synthetic)
            for model, (real, other) in rows.items():
                start = time.perf_counter()
                scores = detection_by_columns(real, other, seed)
                seconds = time.perf_counter() - start
                for label, auc in scores.items():
                    record_row(args.results, {
                        'dataset': name, 'seed': seed, 'model': model, 'columns': label,
                        'tree_detection_auc': auc, 'rows_a_side': min(len(real), len(other)),
                        'code_revision': TABGRAA_CODE_REVISION,
                        'fit_seconds': fit_seconds if model.startswith('harness') else None,
                        'probe_seconds': seconds, 'machine': machine_description()})


if __name__ == '__main__':
    main()
