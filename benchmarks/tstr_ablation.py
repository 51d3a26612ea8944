"""Which columns does train-on-real's TSTR rest on, and does the synthetic table carry them?

    python benchmarks/tstr_ablation.py beijing --seeds 0 --drop day --drop year month day

For a table and seed, scores ``tabgraa_sdv.metrics.tstr_score`` (gradient boosting trained on
one table, tested on the real test split) with every feature, then without each ``--drop``
group of columns. The training table is the real training split ('Real') and a sample of
``len(train)`` rows from the cached SFT model of ``benchmarks/alignment.py``
(``sft_synthesizer``: the current code revision, recorded in ``code_revision``; the anneal;
no alignment), drawn with ``--resampling-factor`` candidates per row as the SDGym rows do (4). If the real score falls
without a group and the synthetic one does not, the synthetic rows do not carry what those
columns tell about the target. Rows are appended to ``benchmarks/results/tstr_ablation.csv``;
finished (dataset, seed, resampling factor, code revision) cells are skipped.
"""

import argparse
import time
from pathlib import Path

import pandas as pd

from alignment import CODE_REVISION, add_resampling, append_rows, load_table, sft_synthesizer
from sdgym_benchmark import machine_description
from tabgraa_sdv.metrics import tstr_score

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'tstr_ablation.csv'


def synthetic_sample(root, name, seed, factor, train):
    """``len(train)`` rows of the cached SFT synthesizer, with ``factor`` candidates per row."""
    synthesizer, _ = sft_synthesizer(root, name, seed, anneal_epochs=3)
    if factor > 1:
        tokens = synthesizer._model.codec.encode(synthesizer._data_processor.transform(train))
        add_resampling(synthesizer, tokens, factor)
    synthesizer.reset_sampling()
    return synthesizer.sample(len(train))


def run_cell(root, name, seed, factor, drops):
    train, test, _, info = load_table(root, name)
    for group in drops:
        wrong = [c for c in group if c not in train.columns or c == info['target']]
        if wrong:
            raise ValueError(f'--drop {wrong}: not feature columns of {name} '
                             f'(its features: {[c for c in train.columns if c != info["target"]]})')
    start = time.perf_counter()
    synthetic = synthetic_sample(root, name, seed, factor, train)
    sample_seconds = time.perf_counter() - start
    rows = []
    for dropped in [()] + [tuple(group) for group in drops]:
        for source, table in (('Real', train), ('TabGRAA-SFT', synthetic)):
            rows.append({
                'dataset': name, 'seed': seed, 'resampling_factor': factor,
                'code_revision': CODE_REVISION, 'training_table': source,
                'dropped': ' '.join(dropped) or '(none)',
                'tstr_score': tstr_score(test.drop(columns=list(dropped)),
                                         table.drop(columns=list(dropped)), info['target'],
                                         info['task'], seed=seed),
                'sample_seconds': round(sample_seconds, 1),
            })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset')
    parser.add_argument('--root', default=str(HERE.parent.parent / 'shared' / 'datasets'))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--drop', nargs='+', action='append', default=[], metavar='COLUMN',
                        help='a group of feature columns to leave out (repeatable)')
    parser.add_argument('--resampling-factor', type=int, default=4)
    parser.add_argument('--results', default=str(RESULTS))
    args = parser.parse_args(argv)
    results = Path(args.results)
    done = pd.read_csv(results) if results.exists() else None
    for seed in args.seeds:
        if done is not None and ((done.dataset == args.dataset) & (done.seed == seed) & (
                done.resampling_factor == args.resampling_factor)
                & (done.code_revision == CODE_REVISION)).any():
            print(f'skip {args.dataset} seed {seed}', flush=True)
            continue
        rows = run_cell(args.root, args.dataset, seed, args.resampling_factor, args.drop)
        machine = machine_description()
        rows = [{**row, 'machine': machine} for row in rows]
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
        results.parent.mkdir(parents=True, exist_ok=True)
        append_rows(results, rows)


if __name__ == '__main__':
    main()
