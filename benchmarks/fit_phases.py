"""Where one ``TabGRAASynthesizer.fit`` spends its time: SFT, alignment, the resampler.

    python benchmarks/fit_phases.py shoppers --seed 0 --options '{}' '{"column_weights": {"Revenue": 4}}'

Fits the harness's TabGRAA settings (``rounds=3, anneal_epochs=3, resampling_factor=4``, plus
each ``--options`` JSON) in this one process, after the harness's ``seed_everything``, and
prints the whole fit's seconds beside those of ``train_sft``, ``align_after_sft`` and
``fit_resampler``, with SFT's epochs and the alignment rounds run. No SDGym, no child process:
set against the harness's ``fit_seconds`` it separates the model's time from the harness's.

``--tracemalloc`` fits with Python's allocation tracing on, as SDGym 0.15.1's ``_synthesize``
does around every synthesizer's fit and sample (to report peak memory): tracing slows code that
allocates many Python objects, so the harness's fit times are those of a slower machine.
"""

import argparse
import json
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sdgym_benchmark import (seed_everything, synthesizer_spec,  # noqa: E402
                             tabgraa_kwargs)

HARNESS = {'rounds': 3, 'anneal_epochs': 3, 'resampling_factor': 4}


def timed(times, name, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            times[name] = time.perf_counter() - start
    return wrapper


def time_phases():
    """Wrap SFT, alignment and the resampler's fit so that each call's seconds land in the
    returned dict (``sft``, ``align``, ``resampler``); ``fit`` looks these up when it runs."""
    import tabgraa_sdv.alignment as alignment
    import tabgraa_sdv.model as model

    times = {}
    model.train_sft = timed(times, 'sft', model.train_sft)
    alignment.align_after_sft = timed(times, 'align', alignment.align_after_sft)
    model.TabularLM.fit_resampler = timed(times, 'resampler', model.TabularLM.fit_resampler)
    return times


def harness_kwargs(name, info, options=None):
    """The ``TabGRAASynthesizer`` arguments of the harness cell ``name`` (``TabGRAA`` or
    ``TabGRAA-SFT``) on a table whose ``dataset.json`` is ``info``, with ``options`` (as
    ``--tabgraa-options``, already checked) applied the way the harness applies them."""
    spec = synthesizer_spec(name, tabgraa_options=options)
    spec.update(target=info.get('target'), task=info.get('task'))
    return tabgraa_kwargs(spec)


def harness_fit(metadata, train, seed, options, trace=False):
    """``TabGRAASynthesizer`` fitted as a harness cell fits it (``HARNESS`` updated with
    ``options``, after ``seed_everything``), with Python's allocation tracing on during
    ``fit`` when ``trace``: ``(synthesizer, fit seconds)``."""
    from tabgraa_sdv import TabGRAASynthesizer

    seed_everything(seed)
    synthesizer = TabGRAASynthesizer(metadata, seed=seed, **{**HARNESS, **options})
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    synthesizer.fit(train)
    seconds = time.perf_counter() - start
    tracemalloc.stop()
    return synthesizer, seconds


def main(argv=None):
    from sdv.metadata import Metadata
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset')
    parser.add_argument('--root', type=Path, default=HERE.parent.parent / 'shared' / 'datasets')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--options', nargs='+', default=['{}'],
                        help='JSON overrides of the harness settings, one fit each')
    parser.add_argument('--tracemalloc', action='store_true',
                        help="trace Python allocations during each fit, as SDGym's harness does")
    args = parser.parse_args(argv)
    warnings.simplefilter('ignore')
    folder = args.root / args.dataset
    train = pd.read_csv(folder / 'train.csv')
    metadata = Metadata.load_from_json(folder / 'metadata.json')
    times = time_phases()
    for options in args.options:
        times.clear()
        synthesizer, total = harness_fit(metadata, train, args.seed, json.loads(options),
                                         args.tracemalloc)
        loss = synthesizer.get_loss_values()
        traced = ' (tracemalloc)' if args.tracemalloc else ''
        print(f'{args.dataset} seed {args.seed} {options}{traced}: fit {total:.1f} s; '
              + ', '.join(f'{name} {seconds:.1f} s' for name, seconds in times.items())
              + f"; SFT epochs {int((loss['Phase'] == 'sft').sum())} (+ "
              f"{int((loss['Phase'] == 'anneal').sum())} anneal); alignment rounds "
              f'{len(synthesizer.get_alignment_history()) - 1}', flush=True)


if __name__ == '__main__':
    main()
