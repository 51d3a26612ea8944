"""Alignment benchmark: SFT only vs sft_more vs TabGRAA vs DPO / KTO / NPO, same SFT start.

    python benchmarks/alignment.py                                  # all tables, seeds 0 1 2
    python benchmarks/alignment.py --datasets adult --seeds 0       # one cell row at a time

For each table and seed the SFT model is trained once (``rounds=0``, defaults) and cached in
``benchmarks/work/``; every objective starts from a copy of it. Each finished cell (dataset x
objective x seed) is appended to ``benchmarks/results/alignment.csv`` at once, and cells already
there are skipped, so an interrupted run resumes. The per-round alignment history of every cell
goes to ``benchmarks/results/alignment_history.csv`` (for the reward/detection plot).

Metrics (``tabgraa_sdv.metrics``) compare ``len(test)`` sampled rows with the table's test split.
With ``--draws K`` the cell's quality is also scored on ``K - 1`` more samples of the same model
(columns ``quality_score_draws``, ``quality_real_bins_draws`` and their ``_sd``): one sample's
quality is noisy (docs/benchmarks.md, "How much quality_score moves between two samples").
The resume check does not look at ``--draws``: write such runs to a results file of their own.
``fit_seconds`` is the SFT time plus the alignment time of the cell.
"""

import argparse
import copy
import json
import pickle
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'alignment.csv'
HISTORY = HERE / 'results' / 'alignment_history.csv'
WORK = HERE / 'work'
ROOT = HERE.parent.parent / 'shared' / 'datasets'
DATASETS = ('adult', 'default', 'shoppers', 'magic', 'beijing')
OBJECTIVES = ('sft', 'sft_more', 'tabgraa', 'dpo', 'kto', 'npo', 'distill')
# Alignment settings of every objective (the synthesizer's defaults, patience raised so that
# every round is run and recorded).
# anneal_epochs is the SFT model's (0: the SFT models of the sessions before the anneal).
# code_revision 2: SFT with the attention-mask fix of commit d3757a5; 3: SFT's epoch bound
# raised from 1.5 M to 3 M row passes; 4: SFT with the rank embedding (model.RANK_EMBEDDING);
# 5: the compact backbone without dropout (backbone.compact_config's default, was 0.1).
# Rows without the key predate revision 2. Only the current revision's SFT models can be
# trained; earlier ones are read from the cache.
CODE_REVISION = 5
SETTINGS = {'rounds': 3, 'patience': 3, 'reward': 'logodds', 'learning_rate': 2e-5,
            'anneal_epochs': 3, 'code_revision': CODE_REVISION}


def settings_label(settings, objective):
    """The ``settings`` column: SFT-only rows carry only the SFT's own setting."""
    if objective == 'sft':
        settings = {k: v for k, v in settings.items()
                    if k in ('anneal_epochs', 'resampling_factor', 'code_revision') and v}
    elif not settings.get('anneal_epochs'):
        settings = {k: v for k, v in settings.items() if k != 'anneal_epochs'}
    return json.dumps(settings)


def load_table(root, name):
    from sdv.metadata import Metadata

    folder = Path(root) / name
    info = json.loads((folder / 'dataset.json').read_text())
    return (pd.read_csv(folder / 'train.csv'), pd.read_csv(folder / 'test.csv'),
            Metadata.load_from_json(folder / 'metadata.json'), info)


def sft_synthesizer(root, name, seed, anneal_epochs=0, code_revision=CODE_REVISION):
    """The SFT synthesizer of a table and seed (``fit`` with ``rounds=0`` and the given anneal)
    and its fit time, cached as ``sft_<table>_seed<seed>_anneal<n>_rev<r>.pkl``. Only the
    current code revision can be trained; an earlier one's model is read from the cache."""
    from tabgraa_sdv import TabGRAASynthesizer

    path = WORK / f'sft_{name}_seed{seed}_anneal{anneal_epochs}_rev{code_revision}.pkl'
    if path.exists():
        with open(path, 'rb') as f:
            return pickle.load(f)
    if code_revision != CODE_REVISION:
        raise ValueError(
            f'code_revision {code_revision}: no cached SFT model at {path}, and models before '
            f'code revision {CODE_REVISION} cannot be trained with this code; run with the '
            'default settings')
    train, _, metadata, _ = load_table(root, name)
    # Resampling is applied per cell (settings), after the objective's rounds.
    synthesizer = TabGRAASynthesizer(metadata, rounds=0, anneal_epochs=anneal_epochs,
                                     resampling_factor=1, seed=seed)
    start = time.perf_counter()
    synthesizer.fit(train)
    fit_seconds = time.perf_counter() - start
    WORK.mkdir(parents=True, exist_ok=True)
    with open(path, 'wb') as f:
        pickle.dump((synthesizer, fit_seconds), f)
    return synthesizer, fit_seconds


def add_resampling(synthesizer, tokens, factor):
    """What ``fit`` does last with ``resampling_factor`` > 1, on a synthesizer fitted without
    it: the ratio classifier, trained on every training row (``tokens``)."""
    lm = synthesizer._model
    lm.resampling_factor = synthesizer.resampling_factor = factor
    lm.fit_resampler(tokens)


def quality_over_draws(synthesizer, train, test, metadata, first, draws, seed):
    """Mean and sd of ``quality_score`` and ``quality_real_bins`` over ``draws`` samples of
    ``len(test)`` rows: ``first`` (the cell's scored sample) and ``draws - 1`` more from the
    same sampler. One draw's quality moves by up to 0.036 on magic with the model unchanged
    (``benchmarks/quality_noise_probe.py``), so a difference between two models needs several."""
    from tabgraa_sdv.metrics import evaluate

    names = ('quality_score', 'quality_real_bins')
    scores = [first] + [evaluate(train, test, synthesizer.sample(len(test)), metadata, seed=seed,
                                 metrics=names) for _ in range(draws - 1)]
    out = {'draws': draws}
    for name in names:
        values = np.array([score[name] for score in scores])
        out[f'{name}_draws'] = round(float(values.mean()), 5)
        out[f'{name}_draws_sd'] = round(float(values.std(ddof=1)), 5)
    return out


def run_cell(root, name, objective, seed, settings, draws=1):
    from tabgraa_sdv.metrics import evaluate
    from tabgraa_sdv.sft import split_rows

    train, test, metadata, info = load_table(root, name)
    base, sft_seconds = sft_synthesizer(root, name, seed, settings.get('anneal_epochs', 0),
                                        settings.get('code_revision', 1))
    synthesizer = copy.deepcopy(base)
    align_seconds, history = 0.0, []
    lm = synthesizer._model
    tokens = lm.codec.encode(synthesizer._data_processor.transform(train))
    if objective != 'sft':
        train_index, val_index = split_rows(len(tokens), 0.1, lm.seed)
        options = {**settings, 'objective': objective}
        options.pop('anneal_epochs', None)
        options.pop('resampling_factor', None)
        options.pop('code_revision', None)
        reward = options.pop('reward', 'logodds')
        start = time.perf_counter()
        aligner = lm.align(tokens[train_index], tokens[val_index], reward=reward, **options)
        align_seconds = time.perf_counter() - start
        history = aligner.history
        synthesizer.rounds = settings['rounds']
        synthesizer.objective = objective
    if settings.get('resampling_factor', 1) > 1:
        start = time.perf_counter()
        add_resampling(synthesizer, tokens, settings['resampling_factor'])
        align_seconds += time.perf_counter() - start
    synthesizer.reset_sampling()
    synthetic = synthesizer.sample(len(test))
    scores = evaluate(train, test, synthetic, metadata, info['target'], info['task'], seed=seed)
    extra = (quality_over_draws(synthesizer, train, test, metadata, scores, draws, seed)
             if draws > 1 else {})
    kept = [row['round'] for row in history if row.get('kept')]
    row = {
        'dataset': name, 'objective': objective,
        'rounds': 0 if objective == 'sft' else settings['rounds'], 'seed': seed,
        **{k: round(v, 5) for k, v in scores.items()},
        'fit_seconds': round(sft_seconds + align_seconds, 1),
        'align_seconds': round(align_seconds, 1), 'kept_round': kept[0] if kept else 0, **extra,
        'settings': settings_label(settings, objective),
        'machine': f'{platform.machine()}, 2 cores',
        'finished_at': pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds'),
    }
    label = {'settings': row['settings']}
    history = [{'dataset': name, 'objective': objective, 'seed': seed, **h, **label}
               for h in history]
    return row, history


def append_rows(path, rows):
    """Append rows to a CSV; a row with a column the file lacks rewrites the file with it, so
    an appended row can never land under another column's header."""
    frame = pd.DataFrame(rows)
    if path.exists():
        header = pd.read_csv(path, nrows=0).columns
        if not set(frame.columns) <= set(header):
            pd.concat([pd.read_csv(path), frame], ignore_index=True).to_csv(path, index=False)
            return
        frame = frame.reindex(columns=header)
    frame.to_csv(path, mode='a', header=not path.exists(), index=False)


def probe_parser(doc, results, seeds=(0,)):
    """A probe's command line: the tables, ``--root``, ``--seeds`` (left out when ``seeds`` is
    None) and ``--results``; the probe adds its own options."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument('datasets', nargs='+')
    parser.add_argument('--root', default=str(ROOT))
    if seeds is not None:
        parser.add_argument('--seeds', nargs='+', type=int, default=list(seeds))
    parser.add_argument('--results', type=Path, default=results)
    return parser


def finished_keys(path, columns, code_revision):
    """The ``columns`` value tuples of ``path``'s rows of ``code_revision`` (none without the
    file): the cells a resumable probe skips. Rows of another revision sampled differently."""
    if not Path(path).exists():
        return set()
    rows = pd.read_csv(path)
    return set(map(tuple, rows.loc[rows['code_revision'] == code_revision, columns].values))


def record_row(path, row):
    """A probe's finished row: appended to its results file at once, and printed."""
    append_rows(path, [row])
    print(', '.join(f'{k}={v:.4f}' if isinstance(v, float) else f'{k}={v}'
                    for k, v in row.items()), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default=str(ROOT))
    parser.add_argument('--datasets', nargs='+', default=list(DATASETS))
    parser.add_argument('--objectives', nargs='+', default=list(OBJECTIVES), choices=OBJECTIVES)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--settings', default='{}', help='JSON overrides of the alignment settings')
    parser.add_argument('--draws', type=int, default=1,
                        help='also score quality on this many samples (mean and sd columns)')
    parser.add_argument('--results', default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error('--draws must be at least 1')
    settings = {**SETTINGS, **json.loads(args.settings)}
    results = Path(args.results)
    history_path = results.with_name(results.stem + '_history.csv')
    if settings != SETTINGS:  # sweeps keep their per-round history apart, labelled
        history_path = results.with_name(results.stem + '_sweep_history.csv')
    done = pd.read_csv(results) if results.exists() else pd.DataFrame(
        columns=['dataset', 'objective', 'seed', 'settings'])
    for seed in args.seeds:
        for name in args.datasets:
            for objective in args.objectives:
                label = settings_label(settings, objective)
                finished = ((done.dataset == name) & (done.objective == objective)
                            & (done.seed == seed) & (done.settings == label)).any()
                if finished:
                    print(f'skip {name} {objective} seed {seed}', flush=True)
                    continue
                print(f'running {name} {objective} seed {seed} ...', flush=True)
                row, history = run_cell(args.root, name, objective, seed, settings, args.draws)
                print(json.dumps(row), flush=True)
                results.parent.mkdir(parents=True, exist_ok=True)
                append_rows(results, [row])
                if history:
                    append_rows(history_path, history)
                done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)


if __name__ == '__main__':
    main()
