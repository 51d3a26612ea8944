"""Where SDGym's TabDDPM loses the numeric columns of a mixed table.

In the harness SDGym 0.15.1's ``TabDDPM`` collapses on every table with categorical columns
(quality 0.38-0.63, tree detection 1.000): each numeric column piles up at its smallest and
largest value, while the all-numeric magic table works. Numbers are quantile-transformed to a
standard normal, and sklearn's inverse maps anything beyond about |z| = 5.2 to the column's
extremes, so the reverse diffusion must be leaving the normal range. This probe fits the
harness's ``TabDDPM`` cell once and measures, without changing the model:

* ``eps``: the denoiser's noise-prediction error on real training rows at a grid of timesteps
  (mean squared error per numeric feature; 1.0 is what predicting zero noise scores);
* ``chain``: the numeric block along one reverse chain of ``--rows`` rows: its standard
  deviation, the share of values beyond |z| = 3, and the largest |z|, at a grid of timesteps;
* ``column``: per numeric column, the sampled raw z (before the inverse transform) against the
  real rows' transformed values: standard deviation, share beyond |z| = 3, and the share of
  decoded values at the column's minimum or maximum.

``--variant probability-input`` fits the same cell with one change: the denoiser sees the
categorical block as probabilities (``exp`` of the log one-hot, in [0, 1]) instead of log
probabilities (``log(1e-30)`` = -69 for every category a row does not have), so the two blocks
enter the first layer on one scale. The diffusion itself (losses, posteriors, sampling) is
untouched. It tests whether the input scale is what breaks the numeric block; it is a probe,
not a fix proposed for SDGym.

    python benchmarks/tabddpm_collapse_probe.py adult --seeds 0
    python benchmarks/tabddpm_collapse_probe.py adult --seeds 0 --variant probability-input

Rows are appended to ``benchmarks/results/tabddpm_collapse_probe.csv``, one run at a time.
"""
import argparse
import contextlib
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
    synthesizer_spec, tabddpm_metadata)

RESULTS = HERE / 'results' / 'tabddpm_collapse_probe.csv'
VARIANTS = ('paper', 'probability-input')
# Fractions of the chain at which the denoiser is checked, from the data end (0) to noise (1).
GRID = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


@contextlib.contextmanager
def denoiser_input(variant):
    """Patch ``MLPDiffusion.forward`` for the variant, for the length of the block."""
    import torch
    from sdgym.synthesizers import tabddpm

    if variant == 'paper':
        yield
        return
    forward, init = tabddpm.MLPDiffusion.forward, tabddpm.GaussianMultinomialDiffusion.__init__

    def patched_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._denoise_fn.n_numerical = self.num_numerical_features  # where the categories start

    def patched_forward(self, x, timesteps, y=None):
        k = self.n_numerical
        return forward(self, torch.cat([x[:, :k], x[:, k:].exp()], dim=1), timesteps, y)

    tabddpm.MLPDiffusion.forward = patched_forward
    tabddpm.GaussianMultinomialDiffusion.__init__ = patched_init
    try:
        yield
    finally:
        tabddpm.MLPDiffusion.forward = forward
        tabddpm.GaussianMultinomialDiffusion.__init__ = init


def timesteps(num_timesteps):
    return sorted({min(num_timesteps - 1, round(f * (num_timesteps - 1))) for f in GRID})


def eps_error(diffusion, x_real, y_real, steps, seed):
    """Per timestep: mean squared error of the predicted noise on the numeric block."""
    import torch
    from sdgym.synthesizers.tabddpm import _index_to_log_onehot

    rows = []
    n = diffusion.num_numerical_features
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)
        x_num, x_cat = x_real[:, :n], x_real[:, n:]
        for t_value in steps:
            t = torch.full((len(x_real),), t_value, dtype=torch.long)
            noise = torch.randn_like(x_num)
            x_num_t = diffusion._gaussian_q_sample(x_num, t, noise=noise)
            parts = [x_num_t]
            if x_cat.shape[1]:
                log_x_cat = _index_to_log_onehot(x_cat.long(), diffusion.num_classes)
                parts.append(diffusion._q_sample(log_x_start=log_x_cat, t=t))
            out = diffusion._denoise_fn(torch.cat(parts, dim=1), t, y=y_real)
            mse = ((out[:, :n] - noise) ** 2).mean().item()
            rows.append({'kind': 'eps', 'timestep': t_value, 'value': mse,
                         'stat': 'eps_mse'})
    return rows


def trace_chain(diffusion, steps):
    """Wrap ``_gaussian_p_sample`` to record the numeric block at the given timesteps."""
    from sdgym.synthesizers import tabddpm

    original = tabddpm.GaussianMultinomialDiffusion._gaussian_p_sample
    wanted, rows = set(steps), []

    def p_sample(self, model_out, x, t):
        out = original(self, model_out, x, t)
        t_value = int(t[0])
        if t_value in wanted:
            z = out['sample']
            rows.append({'kind': 'chain', 'timestep': t_value, 'stat': 'std',
                         'value': z.std().item()})
            rows.append({'kind': 'chain', 'timestep': t_value, 'stat': 'share_abs_gt_3',
                         'value': (z.abs() > 3).float().mean().item()})
            rows.append({'kind': 'chain', 'timestep': t_value, 'stat': 'max_abs',
                         'value': z.abs().max().item()})
        return out

    tabddpm.GaussianMultinomialDiffusion._gaussian_p_sample = p_sample
    return rows, lambda: setattr(tabddpm.GaussianMultinomialDiffusion, '_gaussian_p_sample',
                                 original)


def column_rows(model, train, z_synthetic, decoded):
    transformer = model._transformer
    z_real = transformer.transform(train.drop(columns=[model.target_column])
                                   if model.target_column else train)[0]
    rows = []
    for j, column in enumerate(transformer.num_columns):
        real = pd.to_numeric(train[column], errors='coerce')
        lo, hi = real.min(), real.max()
        syn = pd.to_numeric(decoded[column], errors='coerce')
        real_at_ends = float(((real == lo) | (real == hi)).mean())
        syn_at_ends = float(((syn <= lo) | (syn >= hi)).mean())
        for stat, r, s in (
                ('std', z_real[:, j].std(), z_synthetic[:, j].std()),
                ('share_abs_gt_3', (np.abs(z_real[:, j]) > 3).mean(),
                 (np.abs(z_synthetic[:, j]) > 3).mean()),
                ('share_at_min_or_max', real_at_ends, syn_at_ends)):
            rows.append({'kind': 'column', 'column': column, 'stat': stat,
                         'value': float(s), 'real_value': float(r)})
    return rows


def run(table, seed, steps, rows, variant, results, work, threads):
    import torch
    from sdgym.synthesizers.tabddpm import TabDDPM
    from sdv.metadata import Metadata

    from tabgraa_sdv.metrics import evaluate

    torch.set_num_threads(threads)
    train, test, metadata, manifest = load_prepared(prepare_table(table, work))
    # The harness's workaround for boolean columns declared categorical (shoppers'), so the
    # decoded rows are scored as the harness scores them.
    spec = synthesizer_spec('TabDDPM', target_column=table.conditioning_target(),
                            ddpm_steps=steps, boolean_columns=table.categorical_bool_columns())
    model_metadata = tabddpm_metadata(Metadata.load_from_dict(metadata), spec)
    seed_everything(seed)
    started = time.perf_counter()
    with denoiser_input(variant):
        model = TabDDPM(model_metadata, seed=seed, **spec['kwargs'])
        model.fit(train)
        fit_seconds = time.perf_counter() - started
        diffusion = model._diffusion
        diffusion.eval()
        grid = timesteps(diffusion.num_timesteps)

        # The training rows as the denoiser saw them (numeric block, then category codes).
        features = train.drop(columns=[model.target_column]) if model.target_column else train
        x_num, x_cat = model._transformer.transform(features)
        pick = np.random.default_rng(seed).choice(len(train), min(4096, len(train)),
                                                  replace=False)
        x_real = torch.from_numpy(np.concatenate([x_num, x_cat.astype('float32')], axis=1)
                                  [pick]).float()
        if model._target_encoder is not None:
            y_all = model._target_encoder.transform(
                train[[model.target_column]].astype(str).to_numpy()).reshape(-1)
        else:
            y_all = np.zeros(len(train), dtype='int64')
        y_real = torch.from_numpy(y_all[pick]).long()
        out = eps_error(diffusion, x_real, y_real, grid, seed)

        chain, restore = trace_chain(diffusion, grid)
        begin = time.perf_counter()
        try:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                x_gen, y_gen = diffusion._sample_all(rows, batch_size=rows,
                                                     y_dist=model._y_dist)
        finally:
            restore()
        sample_seconds = time.perf_counter() - begin
    out += chain
    n = diffusion.num_numerical_features
    x_gen = x_gen.numpy()
    z_synthetic = x_gen[:, :n].copy()
    has_cat = model._transformer.category_sizes[0] != 0
    x_cat_gen = x_gen[:, n:] if has_cat else np.empty((rows, 0), dtype='int64')
    decoded = model._transformer.inverse_transform(x_gen[:, :n], x_cat_gen)
    out += column_rows(model, train, z_synthetic, decoded)

    # The decoded table, scored on three metrics as a check that the variant changed the rows.
    synthetic = decoded
    if model._target_encoder is not None:
        target = model._target_encoder.inverse_transform(
            y_gen.numpy().reshape(-1, 1)).reshape(-1)
        target = pd.Series(target)
        synthetic[model.target_column] = (
            target.map({'True': True, 'False': False}) if model._target_is_boolean
            else target.astype(train[model.target_column].dtype))
    synthetic = synthetic[[c for c in train.columns if c in synthetic.columns]]
    scores = evaluate(train, test, synthetic, Metadata.load_from_dict(metadata),
                      target=manifest['target'], task=manifest['task'], seed=seed,
                      metrics=('quality_score', 'tree_detection_auc'))
    out += [{'kind': 'score', 'stat': k, 'value': v} for k, v in scores.items()]
    history = model.loss_history
    # SDGym logs the mean loss of every 100 steps; the last entry is the end of training.
    out += [{'kind': 'loss', 'stat': s, 'value': float(history[s].iloc[-1])}
            for s in ('mloss', 'gloss') if len(history)]

    common = {'dataset': table.name, 'seed': seed, 'steps': steps, 'variant': variant,
              'rows': rows, 'settings': spec['settings'], 'fit_seconds': fit_seconds,
              'sample_seconds': sample_seconds, 'threads': threads,
              'machine': machine_description(),
              'finished_at': pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds')}
    frame = pd.DataFrame([{**common, **r} for r in out])
    append_rows(results, frame.to_dict('records'))
    return frame


def summary(frame):
    """The few numbers worth printing: eps error, the chain's spread, each column's tail."""
    lines = []
    for kind in ('loss', 'score'):
        part = frame[frame.kind == kind]
        lines.append(f'{kind}: ' + ', '.join(f'{s} {v:.4f}' for s, v in
                                              zip(part.stat, part.value)))
    eps = frame[frame.kind == 'eps']
    lines.append('eps mse by t: ' + ', '.join(f'{int(t)}: {v:.3f}' for t, v in
                                                zip(eps.timestep, eps.value)))
    for stat in ('std', 'share_abs_gt_3', 'max_abs'):
        part = frame[(frame.kind == 'chain') & (frame.stat == stat)].sort_values(
            'timestep', ascending=False)
        lines.append(f'chain {stat} (t from T down): ' + ', '.join(
            f'{int(t)}: {v:.3f}' for t, v in zip(part.timestep, part.value)))
    cols = frame[frame.kind == 'column'].pivot_table(index='column', columns='stat',
                                                     values=['value', 'real_value'])
    lines.append(cols.round(3).to_string())
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('datasets', nargs='+')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--steps', type=int, default=1000,
                        help="training steps (default 1000, the harness's TabDDPM cell)")
    parser.add_argument('--rows', type=int, default=5000, help='rows sampled (default 5000)')
    parser.add_argument('--variant', choices=VARIANTS, default='paper')
    parser.add_argument('--data-dir', default=str(HERE.parent.parent / 'shared' / 'datasets'))
    parser.add_argument('--work', default=str(HERE / 'work'))
    parser.add_argument('--results', default=str(RESULTS))
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    for table in resolve_tables(args.datasets, Path(args.data_dir)):
        for seed in args.seeds:
            print(f'[{table.name} seed {seed}, {args.variant}, {args.steps} steps]', flush=True)
            frame = run(table, seed, args.steps, args.rows, args.variant, Path(args.results),
                        Path(args.work), args.threads)
            print(summary(frame), flush=True)


if __name__ == '__main__':
    main()
