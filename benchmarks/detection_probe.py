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
each other, the floor a detector reaches on rows of one distribution.

A model that copied its training rows would score well against them and badly against new rows
of the same distribution. ``--holdout`` checks that: the model is fitted on one random half of
the training split only (the halves of ``--real-halves``), and its sample, as many rows as a
half, is scored against the held-out half (``against='held-out half'``) and against the half it
was fitted on (``'fitted half'``). Without it, ``against`` is ``'training rows'`` (``'the other
half'`` for the real halves).

One row per table, seed, model, ``against`` and column set goes to
``benchmarks/results/detection_probe.csv``, with the alignment round the model kept
(``kept_round``; 0 is the SFT model); the rounds' history goes to
``benchmarks/results/detection_probe_history.csv``. The sample is kept in ``benchmarks/work/``
for a closer look.
"""

import time
from pathlib import Path

import numpy as np

from alignment import append_rows, load_table, probe_parser, record_row
from fit_phases import harness_fit, harness_kwargs
from sdgym_benchmark import (TABGRAA_CODE_REVISION, check_tabgraa_options, kept_round_of,
                             machine_description)
from tabgraa_sdv.metrics import TableEncoder, tree_detection_auc

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'detection_probe.csv'
WORK = HERE / 'work'


def column_sets(columns, without=True):
    """``(label, columns)`` for every column, each column alone and (when ``without``) all but
    each column."""
    yield 'all', list(columns)
    for column in columns:
        yield f'only {column}', [column]
    for column in columns if without else ():
        yield f'without {column}', [c for c in columns if c != column]


def sample_path(name, seed, harness, options=None, holdout=False):
    """Where the probe keeps the sample of one table, seed, harness cell and ``--options``."""
    tag = ''.join(c for c in (options or '') if c.isalnum() or c == '_')
    tag += '_holdout' if holdout else ''
    return WORK / f'detection_probe_{name}_seed{seed}_{harness}{tag}.csv'


def halves(rows, seed):
    """Two disjoint random halves of ``rows`` of equal size (one row left out when the count is
    odd), the same for the same ``seed``: ``(first, second)``."""
    order = np.random.default_rng(seed).permutation(len(rows))
    half = len(rows) // 2
    return (rows.iloc[order[:half]].reset_index(drop=True),
            rows.iloc[order[half:2 * half]].reset_index(drop=True))


def detection_by_columns(real, synthetic, seed, without=True):
    """``{label: detection AUC}`` for each of :func:`column_sets` (the encoder is fit on the
    real rows of that set, as ``evaluate`` fits it on the training rows)."""
    scores = {}
    for label, columns in column_sets(real.columns, without):
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
    parser.add_argument('--holdout', action='store_true',
                        help='fit on one half of the training split; score the sample against '
                             'the held-out half and the fitted half')
    args = parser.parse_args(argv)
    options = check_tabgraa_options(args.options) if args.options else None
    for name in args.datasets:
        train, _, metadata, info = load_table(args.root, name)
        for seed in args.seeds:
            fitted, held_out = halves(train, seed)
            runs = []  # (model, against, real rows, other rows)
            if args.real_halves:
                runs.append(('real halves', 'the other half', fitted, held_out))
            fit_rows = fitted if args.holdout else train
            synthesizer, fit_seconds = harness_fit(metadata, fit_rows, seed,
                                                   harness_kwargs(args.harness, info, options))
            synthetic = synthesizer.sample(len(fit_rows))
            WORK.mkdir(parents=True, exist_ok=True)
            synthetic.to_csv(sample_path(name, seed, args.harness, args.options, args.holdout),
                             index=False)
            model = f'harness {args.harness}' + (f' {args.options}' if args.options else '')
            history, kept = synthesizer.get_alignment_history(), None
            if len(history):
                kept = kept_round_of(history)
                append_rows(args.results.with_name(f'{args.results.stem}_history.csv'), [
                    {'dataset': name, 'seed': seed, 'model': model, 'fit_rows': len(fit_rows),
                     **row} for row in history.to_dict('records')])
            if args.holdout:
                runs += [(model, 'held-out half', held_out, synthetic),
                         (model, 'fitted half', fitted, synthetic)]
            else:
                runs.append((model, 'training rows', train, synthetic))
            for model, against, real, other in runs:
                start = time.perf_counter()
                scores = detection_by_columns(real, other, seed)
                seconds = time.perf_counter() - start
                for label, auc in scores.items():
                    record_row(args.results, {
                        'dataset': name, 'seed': seed, 'model': model, 'against': against,
                        'fit_rows': len(fit_rows), 'columns': label,
                        'tree_detection_auc': auc, 'rows_a_side': min(len(real), len(other)),
                        'code_revision': TABGRAA_CODE_REVISION,
                        'fit_seconds': fit_seconds if model.startswith('harness') else None,
                        'kept_round': kept if model.startswith('harness') else None,
                        'probe_seconds': seconds, 'machine': machine_description()})


if __name__ == '__main__':
    main()
