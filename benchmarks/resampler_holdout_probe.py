"""What do the label model and the resampler do on rows the model never saw?

    python benchmarks/resampler_holdout_probe.py magic --seeds 0 1 2

The harness samples TabGRAA through two steps trained on the real rows after the language
model: the label model redraws the target, and the density-ratio resampler keeps one of four
candidates per row by a real-against-model classifier's odds. Both learn from the training
rows, so a detector against those rows may credit them with what they learned of the rows
themselves. This probe fits the TabGRAA-SFT harness cell on one half of the training split
(``detection_probe.halves``) and samples it, as many rows as the half, in several ways; the
tree detector (all columns) scores each sample against the held-out half, which nothing saw
(``auc_held_out``), and against the fitted half (``auc_fitted``):

- ``raw``: the language model alone (no label redraw, no resampling);
- ``labels``: with the label model, no resampling;
- ``harness``: both, as the harness samples (the resampler ``fit`` trained, whose classifier
  is the code revision's: 31 leaves up to revision 8, 127 from revision 9);
- ``min_samples_leaf=N`` and other ``key=value`` variants (``--variants``): the harness's
  resampler trained again on the same rows with that setting of its gradient-boosting
  classifier (``tabgraa_sdv.rewards.two_sample_classifier``), a more regularised one
  for larger leaves.

One row per table, seed and variant goes to ``benchmarks/results/resampler_holdout_probe.csv``;
a (table, seed, variant) already there for the current code revision is skipped.
"""

import contextlib
import json
import time
from pathlib import Path

from alignment import finished_keys, load_table, probe_parser, record_row
from detection_probe import halves
from fit_phases import harness_fit, harness_kwargs
from sdgym_benchmark import TABGRAA_CODE_REVISION, machine_description
from tabgraa_sdv import rewards
from tabgraa_sdv.metrics import TableEncoder, tree_detection_auc

RESULTS = Path(__file__).parent / 'results' / 'resampler_holdout_probe.csv'
BUILT_IN = ('raw', 'labels', 'harness')


def parse_variant(text):
    """``'min_samples_leaf=100'`` -> ``{'min_samples_leaf': 100}`` (values read as JSON;
    several settings separated by commas)."""
    params = {}
    for item in text.split(','):
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            raise ValueError(f'A variant is key=value[,key=value...], got {text!r}.')
        params[key.strip()] = json.loads(value)
    return params


@contextlib.contextmanager
def classifier_settings(params):
    """While open, every two-sample classifier is fitted with ``params`` overriding its
    settings, the resampler's own among them."""
    original = rewards.two_sample_classifier

    def with_params(*args, **settings):
        return original(*args, **{**settings, **params})

    rewards.two_sample_classifier = with_params
    try:
        yield
    finally:
        rewards.two_sample_classifier = original


@contextlib.contextmanager
def steps_put_back(synthesizer):
    """While open, the label model and resampler of ``synthesizer``'s model (yielded) may be
    replaced; on leaving, its own are put back and its sampling is reset."""
    lm = synthesizer._model
    label_model, resampler = lm.label_model, lm.resampler
    try:
        yield lm
    finally:
        lm.label_model, lm.resampler = label_model, resampler
        synthesizer.reset_sampling()


def sample_variant(synthesizer, variant, real_tokens, num_rows):
    """``num_rows`` rows of ``synthesizer`` sampled as ``variant`` says; its own label model
    and resampler are put back afterwards."""
    with steps_put_back(synthesizer) as lm:
        if variant in ('raw', 'labels'):
            lm.resampler = None
            if variant == 'raw':
                lm.label_model = None
        elif variant != 'harness':
            with classifier_settings(parse_variant(variant)):
                lm.fit_resampler(real_tokens)
        synthesizer.reset_sampling()
        return synthesizer.sample(num_rows)


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS)
    parser.add_argument('--variants', nargs='+',
                        default=[*BUILT_IN, 'min_samples_leaf=100', 'min_samples_leaf=400',
                                 'max_leaf_nodes=7'])
    args = parser.parse_args(argv)
    for variant in args.variants:
        if variant not in BUILT_IN:
            parse_variant(variant)  # a typo fails before the first fit, not after it
    done = finished_keys(args.results, ['dataset', 'seed', 'variant'], TABGRAA_CODE_REVISION)
    for name in args.datasets:
        train, _, metadata, info = load_table(args.root, name)
        for seed in args.seeds:
            variants = [v for v in args.variants if (name, seed, v) not in done]
            if not variants:
                print(f'{name} seed {seed}: done already, skipped')
                continue
            fitted, held_out = halves(train, seed)
            on_held_out, on_fitted = TableEncoder().fit(held_out), TableEncoder().fit(fitted)
            synthesizer, fit_seconds = harness_fit(
                metadata, fitted, seed, harness_kwargs('TabGRAA-SFT', info))
            lm = synthesizer._model
            real_tokens = lm.codec.encode(synthesizer._data_processor.transform(fitted))
            for variant in variants:
                start = time.perf_counter()
                sample = sample_variant(synthesizer, variant, real_tokens, len(fitted))
                record_row(args.results, {
                    'dataset': name, 'seed': seed, 'variant': variant,
                    'auc_held_out': tree_detection_auc(on_held_out, held_out, sample, seed=seed),
                    'auc_fitted': tree_detection_auc(on_fitted, fitted, sample, seed=seed),
                    'rows': len(sample), 'fit_rows': len(fitted), 'fit_seconds': fit_seconds,
                    'probe_seconds': time.perf_counter() - start,
                    'code_revision': TABGRAA_CODE_REVISION, 'machine': machine_description()})


if __name__ == '__main__':
    main()
