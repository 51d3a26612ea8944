"""Do a sample's fine offset digits copy the training rows? Redraw them and detect again.

    python benchmarks/detection_probe.py magic --seeds 0 1 2 --harness TabGRAA-SFT --holdout
    python benchmarks/offset_smoothing_probe.py magic --seeds 0 1 2 --harness TabGRAA-SFT

The columnar codec writes a number as a quantile bin of the training rows plus offset digits
that place it exactly inside the bin, so a model can learn where, inside each bin, its training
rows lie. ``detection_probe.py --holdout`` fits on one half of the training split and keeps its
sample in ``benchmarks/work/``; this probe reads that sample, refits the codec on the same half
(magic's columns are plain numbers, so SDV's processing leaves them as they are) and rewrites
the sample's numbers three ways before running the tree detector again against the held-out
half and the fitted half, on every column and on each column alone:

- ``as sampled``: the sample itself (the numbers ``detection_probe.py`` recorded, up to the
  detector's seed);
- ``top digit kept``: the first offset digit as sampled, the rest drawn uniformly, so a value
  stays in the same 1/base of its bin;
- ``uniform in bin``: every offset drawn uniformly inside the value's bin, so only the bin
  comes from the model;
- ``neighbour bin``: the bin moved to the one below or above with a chance of 1/4 each (kept at
  the ends), then uniform inside it: a histogram smoothed over three bins, the same for every
  bin (spike bins of a single value included, which a real option would have to spare).

Bins and categories are never touched. One row per table, seed, variant, ``against`` and
column set goes to ``benchmarks/results/offset_smoothing_probe.csv``.
"""

import time
from pathlib import Path

import numpy as np
import pandas as pd

from alignment import load_table, probe_parser, record_row
from detection_probe import detection_by_columns, halves, sample_path
from sdgym_benchmark import machine_description
from tabgraa_sdv.codec import ColumnarCodec, NumericColumn

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'offset_smoothing_probe.csv'
VARIANTS = ('as sampled', 'top digit kept', 'uniform in bin', 'neighbour bin')


def redraw_offsets(codec, data, variant, rng):
    """``data`` with each numeric column's offset digits redrawn as ``variant`` says."""
    if variant == 'as sampled':
        return data
    out = data.copy()
    for column in codec.columns:
        if not isinstance(column, NumericColumn) or column.n_offset == 0:
            continue
        codes = column.encode(data[column.name])
        k, nan = column.grid_of_codes(codes)
        bins = np.where(nan, 0, codes[:, 0])
        if variant == 'neighbour bin':
            step = rng.choice([-1, 0, 0, 1], size=len(bins))
            bins = np.where(nan, 0, np.clip(bins + step, 0, column.n_bins - 1))
        start, width = column.starts[bins], column.widths[bins]
        low, high = np.zeros(len(k), np.int64), width
        if variant == 'top digit kept':
            span = column.base ** (column.n_offset - 1)
            low = np.minimum(codes[:, 1] * span, width - 1)
            high = np.minimum(low + span, width)
        elif variant not in ('uniform in bin', 'neighbour bin'):
            raise ValueError(f'Unknown variant {variant!r}; use one of {VARIANTS}.')
        redrawn = start + low + (rng.random(len(k)) * (high - low)).astype(np.int64)
        values = column.decode(column.codes_of_grid(np.where(nan, -1, redrawn)))
        out[column.name] = values.to_numpy()
    return out


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS)
    parser.add_argument('--harness', choices=['TabGRAA', 'TabGRAA-SFT'], default='TabGRAA-SFT')
    parser.add_argument('--options', default=None, metavar='JSON',
                        help="the --options of the detection_probe.py run whose sample to read")
    parser.add_argument('--variants', nargs='+', choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args(argv)
    for name in args.datasets:
        train, _, _, _ = load_table(args.root, name)
        for seed in args.seeds:
            fitted, held_out = halves(train, seed)
            path = sample_path(name, seed, args.harness, args.options, holdout=True)
            if not path.exists():
                raise SystemExit(f'{path} is missing: run detection_probe.py {name} --seeds '
                                 f'{seed} --harness {args.harness} --holdout first.')
            sample = pd.read_csv(path)[list(train.columns)]
            codec = ColumnarCodec().fit(fitted)
            for variant in args.variants:
                rows = redraw_offsets(codec, sample, variant, np.random.default_rng(seed))
                for against, real in (('held-out half', held_out), ('fitted half', fitted)):
                    start = time.perf_counter()
                    scores = detection_by_columns(real, rows, seed, without=False)
                    seconds = time.perf_counter() - start
                    for label, auc in scores.items():
                        record_row(args.results, {
                            'dataset': name, 'seed': seed, 'harness': args.harness,
                            'options': args.options or '', 'variant': variant,
                            'against': against, 'columns': label, 'tree_detection_auc': auc,
                            'rows_a_side': min(len(real), len(rows)),
                            'probe_seconds': seconds, 'machine': machine_description()})


if __name__ == '__main__':
    main()
