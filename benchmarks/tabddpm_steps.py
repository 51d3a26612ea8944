"""TabDDPM's quality against training steps, from one training run scored at checkpoints.

Issue 4 asks for the TabDDPM paper's tuned Adult configuration with as many steps as the time
budget allows, and a plot of its quality against steps. On this 2-core CPU one step of that
configuration (MLP 256-1024x4-256, batch 4,096) takes about 0.8 s, so the paper's 30,000 steps
are about 7 hours; this script trains SDGym's own ``TabDDPM`` once for ``--steps`` steps and
scores it at checkpoints along the way, so the whole curve costs one run::

    python benchmarks/tabddpm_steps.py --dataset adult --steps 3000
    python benchmarks/tabddpm_steps.py --plot-only     # redraw the figure and the docs table

The figure goes to ``docs/figures/tabddpm_steps.png`` and a table of every checkpoint replaces
the part of ``docs/benchmarks.md`` between ``<!-- tabddpm-steps:start -->`` and ``end``.

SDGym's trainer decays the learning rate linearly to zero over the *total* steps, so a checkpoint
at step s of a 3,000-step run is not the model a 1,000-step run ends with; the final checkpoint
is exactly the model ``sdgym_benchmark.py --synthesizers TabDDPM-AdultTuned --ddpm-steps 3000``
fits (same class, configuration and seeding), and it is scored as the harness scores a cell: as
many rows as the training table, every metric of ``tabgraa_sdv.metrics``. Earlier checkpoints
sample ``--rows`` rows and get quality, tree detection and TSTR. Scoring a checkpoint forks the random streams, so
it does not change the training that follows.

Each checkpoint is appended to ``benchmarks/results/tabddpm_steps.csv`` as it is scored. A run
whose final checkpoint is in the file is skipped; an interrupted one starts again from step 0
(its partial rows are replaced).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from alignment import append_rows  # noqa: E402  (benchmarks/ is not a package)
from sdgym_benchmark import (  # noqa: E402
    load_prepared, machine_description, prepare_table, resolve_tables, seed_everything,
    synthesizer_spec)

RESULTS = HERE / 'results' / 'tabddpm_steps.csv'
FIGURE = HERE.parent / 'docs' / 'figures' / 'tabddpm_steps.png'
DOCS = HERE.parent / 'docs' / 'benchmarks.md'
MARKERS = ('<!-- tabddpm-steps:start -->', '<!-- tabddpm-steps:end -->')
METRICS = ('quality_score', 'tree_detection_auc', 'tstr_score')


def checkpoints(steps, requested):
    """Sorted checkpoints within ``steps``, always ending with ``steps`` itself."""
    return sorted({s for s in requested if 0 < s < steps} | {steps})


def train_with_checkpoints(model, train, at, score):
    """``model.fit(train)`` with ``score(step)`` called after each step in ``at``.

    SDGym's ``Trainer.run_loop`` has no callback; its ``_anneal_lr(step)`` runs once after every
    optimizer step, so the hook wraps it for the length of this fit."""
    from sdgym.synthesizers import tabddpm

    original = tabddpm.Trainer._anneal_lr
    wanted = set(at)

    def anneal_then_score(trainer, step):
        original(trainer, step)
        if step + 1 in wanted and step + 1 < trainer.steps:  # the last one is scored after fit
            score(step + 1, trainer)

    tabddpm.Trainer._anneal_lr = anneal_then_score
    try:
        model.fit(train)
    finally:
        tabddpm.Trainer._anneal_lr = original


def sample_checkpoint(model, rows, seed):
    """Rows from a model still in training, without touching the training's random streams."""
    import torch

    state = np.random.get_state()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fitted = model._fitted
        # The attributes fit() sets after its loop, so that sample() runs mid-training.
        model._column_order = list(model._table_metadata['columns'])
        model._fitted = True
        try:
            return model.sample(rows)
        finally:
            model._fitted = fitted
            model._diffusion.train()
            np.random.set_state(state)


def run(table, seed, steps, at, rows, results, work, threads, final_rows=None):
    import torch
    from sdgym.synthesizers.tabddpm import TabDDPM
    from sdv.metadata import Metadata

    from tabgraa_sdv.metrics import METRICS as ALL_METRICS, evaluate

    torch.set_num_threads(threads)
    train, test, metadata, manifest = load_prepared(prepare_table(table, work))
    # The harness's own TabDDPM-AdultTuned cell, so the settings column reads the same.
    spec = synthesizer_spec('TabDDPM-AdultTuned', target_column=table.conditioning_target(),
                            ddpm_steps=steps)
    kwargs, settings = spec['kwargs'], spec['settings']
    sdv_metadata = Metadata.load_from_dict(metadata)
    seed_everything(seed)
    model = TabDDPM(metadata, seed=seed, **kwargs)
    started = time.perf_counter()
    scoring = [0.0]  # seconds spent scoring, taken out of the training clock

    def score(step, trainer=None):
        # The last checkpoint is the fitted model: as many rows as the training table and every
        # metric, as the SDGym harness scores a cell; the others a smaller sample, three metrics.
        begin = time.perf_counter()
        if trainer:
            synthetic = sample_checkpoint(model, rows, seed)
        else:
            synthetic = model.sample(final_rows or len(train))
        sampled = time.perf_counter() - begin
        scores = evaluate(train, test, synthetic, sdv_metadata, target=manifest['target'],
                          task=manifest['task'], seed=seed,
                          metrics=METRICS if trainer else ALL_METRICS)
        history = trainer.loss_history if trainer else model.loss_history
        row = {'dataset': table.name, 'seed': seed, 'total_steps': steps, 'step': step,
               **scores, 'train_loss': float(history['loss'].iloc[-1]) if len(history) else None,
               'train_seconds': begin - started - scoring[0], 'sample_seconds': sampled,
               'synthetic_rows': len(synthetic), 'settings': settings, 'threads': threads,
               'machine': machine_description(),
               'finished_at': pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds')}
        append_rows(results, [row])
        print(f'step {step:>6}/{steps}: ' + ', '.join(f'{k} {v:.4f}' for k, v in scores.items()
                                                      if k in METRICS)
              + f"  (train {row['train_seconds']:.0f} s, sample {sampled:.0f} s)", flush=True)
        scoring[0] += time.perf_counter() - begin

    train_with_checkpoints(model, train, at, score)
    score(steps)
    return model


def plot(results, path):
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    frame = pd.read_csv(results)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.4))
    for (dataset, seed, total), run_rows in frame.groupby(['dataset', 'seed', 'total_steps']):
        run_rows = run_rows.sort_values('step')
        for ax, metric in zip(axes, METRICS):
            ax.plot(run_rows['step'], run_rows[metric], marker='o',
                    label=f'{dataset}, seed {seed}, {total:,} steps')
    # Full scales, not zoomed to the points: a flat 1.000 detection AUC must look flat.
    limits = {'quality_score': (0, 1), 'tree_detection_auc': (0.45, 1.02)}
    for ax, metric in zip(axes, METRICS):
        ax.set_xlabel('training steps')
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis='y', useOffset=False)
        if metric in limits:
            ax.set_ylim(*limits[metric])
    axes[0].legend(fontsize=8)
    fig.suptitle('TabDDPM (paper-tuned Adult configuration): score at each checkpoint')
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def table(results):
    """Markdown: one row per scored checkpoint, with the run's settings and machine."""
    frame = pd.read_csv(results).sort_values(['dataset', 'seed', 'total_steps', 'step'])
    lines = [f'Generated by `python benchmarks/tabddpm_steps.py --plot-only` from '
             f'`benchmarks/results/{Path(results).name}`.', '',
             '| dataset | seed | run steps | step | quality_score | tree_detection_auc | '
             'tstr_score | synthetic rows | train seconds (cumulative) | sample seconds |',
             '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for _, row in frame.iterrows():
        lines.append(
            f"| {row['dataset']} | {row['seed']} | {row['total_steps']:,} | {row['step']:,} | "
            f"{row['quality_score']:.4f} | {row['tree_detection_auc']:.4f} | "
            f"{row['tstr_score']:.4f} | {row['synthetic_rows']:,} | {row['train_seconds']:.0f} "
            f"| {row['sample_seconds']:.0f} |")
    for (settings, machine, threads), _ in frame.groupby(['settings', 'machine', 'threads']):
        lines += ['', f'Settings: `{settings}`. Machine: {machine}, {threads} torch threads.']
    final = frame[frame['step'] == frame['total_steps']]
    if len(final):
        extra = [m for m in ('logistic_detection', 'dcr_share', 'mia_auc', 'alpha_precision',
                             'beta_recall') if m in final]
        lines += ['', 'Last checkpoint (the fitted model), the other metrics: ' + '; '.join(
            f"{row['dataset']} seed {row['seed']}: " + ', '.join(
                f'{m} {row[m]:.4f}' for m in extra) for _, row in final.iterrows()) + '.']
    return '\n'.join(lines)


def needs_run(results, dataset, seed, steps):
    """False when the run's last checkpoint is in ``results``; True otherwise, after removing
    the rows of an interrupted run (it starts again from step 0)."""
    if not Path(results).is_file():
        return True
    done = pd.read_csv(results)
    same = (done['dataset'] == dataset) & (done['seed'] == seed) & (done['total_steps'] == steps)
    if (same & (done['step'] == steps)).any():
        print(f'{dataset}, seed {seed}, {steps} steps: already in {results}')
        return False
    if same.any():
        done[~same].to_csv(results, index=False)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dataset', default='adult')
    parser.add_argument('--data-dir', default=str(HERE.parent.parent / 'shared' / 'datasets'))
    parser.add_argument('--steps', type=int, default=3000, help='training steps of the run')
    parser.add_argument('--checkpoints', type=int, nargs='+', default=[250, 500, 1000, 2000],
                        help='steps at which to score, besides the last')
    parser.add_argument('--rows', type=int, default=5000,
                        help='synthetic rows per checkpoint before the last')
    parser.add_argument('--final-rows', type=int, default=None,
                        help='synthetic rows at the last checkpoint (default: the training rows)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--results', type=Path, default=RESULTS)
    parser.add_argument('--work', type=Path, default=HERE / 'work')
    parser.add_argument('--figure', type=Path, default=FIGURE)
    parser.add_argument('--docs', type=Path, default=DOCS, help='markdown file to update')
    parser.add_argument('--plot-only', action='store_true')
    args = parser.parse_args(argv)
    for name in ('steps', 'rows', 'threads', 'final_rows'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if not args.plot_only:
        source, = resolve_tables([args.dataset], args.data_dir)
        if needs_run(args.results, source.name, args.seed, args.steps):
            run(source, args.seed, args.steps, checkpoints(args.steps, args.checkpoints),
                args.rows, args.results, args.work, args.threads, args.final_rows)
    print(plot(args.results, args.figure))
    from report import update_docs

    try:
        link = args.figure.resolve().relative_to(args.docs.resolve().parent).as_posix()
    except ValueError:
        link = args.figure.resolve().as_posix()
    update_docs(args.docs, table(args.results) + f'\n\n![TabDDPM against steps]({link})\n',
                *MARKERS)
    print(f'updated {args.docs}')


if __name__ == '__main__':
    main()
