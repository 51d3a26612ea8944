"""How far does density-ratio resampling go as the number of candidates per row grows?

    python benchmarks/resampling_factor_probe.py magic --seeds 0 --factors 1 4 8 16

Resampling draws ``k`` candidate rows per output row and keeps one with probability
proportional to a real-vs-model classifier's odds (``tabgraa_sdv.resampling``). The classifier
sees whole rows, target included, so it can correct the model's ``p(target | other columns)``
as well as the features; the larger ``k``, the closer the output gets to what the classifier
believes is real, at ``k`` times the sampling cost and no extra fit time. For each factor this
probe takes the cached SFT synthesizer of ``benchmarks/alignment.py`` (``sft_synthesizer``,
with the anneal, the current code revision; trained on first use), fits the resampler as
``fit`` would (``alignment.add_resampling``: same classifier, same rows for every factor),
samples as many rows as the training split and scores them against the test split. One row per
table, seed and factor goes to ``benchmarks/results/resampling_factor_probe.csv``.

``--harness TabGRAA`` (or ``TabGRAA-SFT``) fits instead what that SDGym harness cell fits, with
the current code revision's settings for the table (``fit_phases.harness_fit``; not cached), and
samples it at every factor; the ``fit`` column says which model the row sampled.
"""

import time
from pathlib import Path

from alignment import (CODE_REVISION, add_resampling, load_table, probe_parser, record_row,
                       sft_synthesizer)
from capacity_probe import METRICS
from fit_phases import harness_fit, harness_kwargs
from sdgym_benchmark import TABGRAA_CODE_REVISION, machine_description
from tabgraa_sdv.metrics import evaluate

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'resampling_factor_probe.csv'


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS)
    parser.add_argument('--factors', nargs='+', type=int, default=[1, 4, 8, 16])
    parser.add_argument('--harness', choices=['TabGRAA', 'TabGRAA-SFT'],
                        help="fit this harness cell's model instead of the cached SFT one")
    args = parser.parse_args(argv)
    for name in args.datasets:
        train, test, metadata, info = load_table(args.root, name)
        for seed in args.seeds:
            if args.harness:
                synthesizer, _ = harness_fit(metadata, train, seed,
                                             harness_kwargs(args.harness, info))
                fitted, revision = f'harness {args.harness}', TABGRAA_CODE_REVISION
            else:
                synthesizer, _ = sft_synthesizer(args.root, name, seed, anneal_epochs=3)
                fitted, revision = 'alignment.py SFT cache', CODE_REVISION
            tokens = synthesizer._model.codec.encode(synthesizer._data_processor.transform(train))
            for factor in args.factors:
                start = time.perf_counter()
                add_resampling(synthesizer, tokens, factor)
                resampler_seconds = time.perf_counter() - start
                synthesizer.reset_sampling()
                start = time.perf_counter()
                synthetic = synthesizer.sample(len(train))
                sample_seconds = time.perf_counter() - start
                scores = evaluate(train, test, synthetic, metadata, info['target'], info['task'],
                                  seed=seed, metrics=METRICS)
                row = {'dataset': name, 'seed': seed, 'factor': factor, 'fit': fitted,
                       'code_revision': revision, **scores,
                       'resampler_seconds': resampler_seconds, 'sample_seconds': sample_seconds,
                       'machine': machine_description()}
                record_row(args.results, row)


if __name__ == '__main__':
    main()
