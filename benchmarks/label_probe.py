"""Label columns: does redrawing the target from a gradient-boosting model close the TSTR gap?

    python benchmarks/label_probe.py magic shoppers adult default --seeds 0

``TabGRAASynthesizer(label_columns=[target])`` redraws the target of every sampled row from
``p_hat(target | other columns)``, a mean of gradient-boosting fits on the training rows
(``tabgraa_sdv.labels``). For each table and seed this probe writes two kinds of rows to
``benchmarks/results/label_probe.csv``:

* ``source=real``: the real training rows with their target redrawn by a label model, scored
  against the test split. This is the ceiling of the idea (perfect features) and compares the
  label model's variants: one fit on every row, 5 subsample fits (the default) and 5
  bootstrap fits.
* ``source=sft``: the cached SFT synthesizer of ``benchmarks/alignment.py``
  (``sft_synthesizer``: rounds=0, the anneal, the current code revision's cache), with the
  harness's ``resampling_factor=4`` (``alignment.add_resampling``; ``--factors`` for others),
  sampled as many rows as the training split, without and with the default label model.
  Rows written before ``--factors`` existed have no ``resampling_factor``: they used 4. The
  resampler is refitted for each, as ``fit`` does it, on the model's rows with their labels
  redrawn.

``label_share`` is the share of the target's most common training value in the rows, beside
``real_label_share``, the training rows' own: how far a variant moves the label's marginal. A
regression target (beijing's ``pm2.5``) has ``label_mean`` and ``real_label_mean`` instead, and
no bootstrap variant.
"""

import itertools
import time
from pathlib import Path

import torch

from alignment import (CODE_REVISION, add_resampling, load_table, probe_parser, record_row,
                       sft_synthesizer)
from capacity_probe import METRICS
from sdgym_benchmark import machine_description
from tabgraa_sdv.labels import LabelModel
from tabgraa_sdv.metrics import evaluate

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'label_probe.csv'
# Label models the real rows are relabelled with (the real rows as they are: the Real row of
# the harness, metrics.train_on_real_score).
VARIANTS = {'one fit': {'n_models': 1}, '5 subsamples': {}, '5 bootstraps': {'bootstrap': True}}


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS)
    parser.add_argument('--factors', nargs='+', type=int, default=[4],
                        help='resampling factors of the SFT rows (each a row of its own)')
    parser.add_argument('--sft-only', action='store_true',
                        help='skip the real rows relabelled (the ceiling)')
    args = parser.parse_args(argv)
    for name in args.datasets:
        train, test, metadata, info = load_table(args.root, name)
        target = info['target']
        regression = info['task'] == 'regression'
        common = train[target].value_counts().index[0]

        def record(row, frame):
            scores = evaluate(train, test, frame, metadata, target, info['task'],
                              seed=row['seed'], metrics=METRICS)
            if regression:  # the label's marginal: its mean beside the training rows'
                shares = {'label_mean': float(frame[target].mean()),
                          'real_label_mean': float(train[target].mean())}
            else:
                shares = {'label_share': float((frame[target] == common).mean()),
                          'real_label_share': float((train[target] == common).mean())}
            row.update(scores, **shares, code_revision=CODE_REVISION,
                       machine=machine_description())
            record_row(args.results, row)

        for seed in args.seeds:
            synthesizer, _ = sft_synthesizer(args.root, name, seed, anneal_epochs=3)
            lm = synthesizer._model
            tokens = lm.codec.encode(synthesizer._data_processor.transform(train))
            for variant, options in ({} if args.sft_only else VARIANTS).items():
                if regression and options.get('bootstrap'):
                    continue  # a number's regression fits use folds, never bootstraps
                start = time.perf_counter()
                model = LabelModel(lm.codec, [target], seed=seed, **options).fit(tokens)
                fit_seconds = time.perf_counter() - start
                redrawn = model.redraw(tokens, torch.Generator().manual_seed(seed))
                frame = synthesizer._data_processor.reverse_transform(lm.codec.decode(redrawn))
                record({'dataset': name, 'seed': seed, 'source': 'real', 'variant': variant,
                        'label_fit_seconds': fit_seconds}, frame)
            for variant, factor in itertools.product(('none', '5 subsamples'), args.factors):
                start = time.perf_counter()
                lm.label_model = (None if variant == 'none' else
                                  LabelModel(lm.codec, [target], seed=seed).fit(tokens))
                fit_seconds = time.perf_counter() - start
                add_resampling(synthesizer, tokens, factor)
                synthesizer.reset_sampling()
                start = time.perf_counter()
                synthetic = synthesizer.sample(len(train))
                record({'dataset': name, 'seed': seed, 'source': 'sft', 'variant': variant,
                        'resampling_factor': factor, 'label_fit_seconds': fit_seconds,
                        'sample_seconds': time.perf_counter() - start}, synthetic)
            lm.label_model = None


if __name__ == '__main__':
    main()
