"""Does each alignment round help on rows the model never saw, before and after resampling?

    python benchmarks/round_holdout_probe.py magic --seeds 0 1 2

``fit`` keeps an alignment round when its pool's detection AUC against SFT's validation rows
(856 on magic) beats the best earlier round's by more than one standard error. On magic fitted
on half of the training split (``detection_probe.py --holdout``), the rounds it kept were
worse against the other half, which holds ten times the rows. Two things differ between what
the rule sees and what that detector sees: the number of real rows, and the rows themselves.
The rule scores the policy's raw pool; the harness samples through the label model and the
density-ratio resampler (``resampling_factor=4``), which ``fit`` trains after the rounds.

This probe fits the TabGRAA harness cell on one half of the training split (the halves of
``detection_probe.halves``) and keeps a copy of the policy after every round (round 0 is the
SFT model). Then, for each round, the tree detector (all columns) scores against the held-out
half, which no part of ``fit`` saw:

- ``pool_auc``: the round's 8,192-row pool, the rows the rule scored (no label redraw, no
  resampling);
- ``sample_auc``: the harness's output had ``fit`` kept that round: the round's weights, the
  resampler trained again on them (as ``fit`` trains it on the kept round), and
  ``synthesizer.sample`` of as many rows as the fitted half. ``sample_auc_fitted`` is the same
  sample against the fitted half.

Beside them each row has the rule's own ``selection_auc`` and its standard error, and whether
the rule kept the round. ``selection_auc_output`` is the rule's detector (the same classifier
against the same 856 validation rows) on the round's *output* instead of its pool: a sample of
the pool's size, drawn through a label model and a resampler trained on the rule's training rows
only (``fit``'s are trained on every row, the validation rows too, which would favour them).
That is what a rule that judged the output would see. ``selection_auc_recomputed`` is the
detector on the pool again, a check that it is the rule's (it must equal ``selection_auc``).
``tests/test_probes.py`` checks that the kept round's copy samples exactly what the fitted
synthesizer samples. One row per round goes to ``benchmarks/results/round_holdout_probe.csv``;
a (table, seed) already there for the current code revision is skipped.
"""

import contextlib
import copy
import time
from pathlib import Path

from alignment import finished_keys, load_table, probe_parser, record_row
from detection_probe import halves
from fit_phases import harness_fit, harness_kwargs
from resampler_holdout_probe import steps_put_back
from sdgym_benchmark import TABGRAA_CODE_REVISION, check_tabgraa_options, machine_description
from tabgraa_sdv.alignment import Aligner, Scorer
from tabgraa_sdv.metrics import TableEncoder, tree_detection_auc
from tabgraa_sdv.sft import split_rows

RESULTS = Path(__file__).parent / 'results' / 'round_holdout_probe.csv'


@contextlib.contextmanager
def policy_every_round():
    """While open, every alignment round's scored pool and a copy of its policy are collected
    in the yielded dict, ``{round: (policy, pool tokens)}``. The copy is taken when the round
    is scored, so the rounds themselves (their draws and decisions) are unchanged."""
    rounds, evaluate = {}, Aligner._evaluate

    def keeping(self, round_, pool, extra, best=None):
        rounds[round_] = (copy.deepcopy(self.policy), pool)
        return evaluate(self, round_, pool, extra, best)

    Aligner._evaluate = keeping
    try:
        yield rounds
    finally:
        Aligner._evaluate = evaluate


def use_round(synthesizer, policy, real_tokens):
    """Make ``synthesizer`` sample as if ``fit`` had kept ``policy``'s round: its LoRA weights
    merged into a copy of the base, and the resampler trained again on that model."""
    lm = synthesizer._model
    lm.model = copy.deepcopy(policy).merge_and_unload().eval()
    lm.fit_resampler(real_tokens)
    synthesizer.reset_sampling()


def output_for_rule(synthesizer, real_tokens, train_index, num_rows):
    """``num_rows`` rows as ``synthesizer`` samples them, but with its label model and resampler
    trained on ``real_tokens[train_index]`` only (then put back), so that the validation rows
    stay unseen by everything that made the sample. Returned as token rows."""
    with steps_put_back(synthesizer) as lm:
        if lm.label_model is not None:
            lm.label_model = copy.deepcopy(lm.label_model).fit(real_tokens[train_index])
        lm.fit_resampler(real_tokens[train_index])
        synthesizer.reset_sampling()
        processor = synthesizer._data_processor
        return lm.codec.encode(processor.transform(synthesizer.sample(num_rows)))


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS)
    parser.add_argument('--options', default=None, metavar='JSON',
                        help='overrides of the harness settings (as --tabgraa-options)')
    args = parser.parse_args(argv)
    options = check_tabgraa_options(args.options) if args.options else None
    done = finished_keys(args.results, ['dataset', 'seed'], TABGRAA_CODE_REVISION)
    for name in args.datasets:
        train, _, metadata, info = load_table(args.root, name)
        for seed in args.seeds:
            if (name, seed) in done:
                print(f'{name} seed {seed}: done already, skipped')
                continue
            fitted, held_out = halves(train, seed)
            # as detection_probe.py: each detector's encoder fitted on its real rows
            on_held_out, on_fitted = TableEncoder().fit(held_out), TableEncoder().fit(fitted)
            with policy_every_round() as rounds:
                synthesizer, fit_seconds = harness_fit(
                    metadata, fitted, seed, harness_kwargs('TabGRAA', info, options))
            history = synthesizer.get_alignment_history().set_index('round')
            lm = synthesizer._model
            processor = synthesizer._data_processor
            real_tokens = lm.codec.encode(processor.transform(fitted))
            # the rule's detector: its scorer is built from SFT's split as fit builds it
            train_index, val_index = split_rows(len(real_tokens), 0.1, lm.seed)
            rule = Scorer(lm.codec, real_tokens[train_index], real_tokens[val_index],
                          seed=lm.seed)
            for round_, (policy, pool) in sorted(rounds.items()):
                start = time.perf_counter()
                pool_rows = processor.reverse_transform(lm.codec.decode(pool))[train.columns]
                use_round(synthesizer, policy, real_tokens)
                sample = synthesizer.sample(len(fitted))
                output = output_for_rule(synthesizer, real_tokens, train_index, len(pool))
                record_row(args.results, {
                    'dataset': name, 'seed': seed, 'round': round_,
                    'kept': bool(history.loc[round_, 'kept']),
                    'selection_auc': history.loc[round_, 'detection_auc'],
                    'selection_auc_se': history.loc[round_, 'detection_auc_se'],
                    'selection_auc_recomputed': rule.detection_auc(pool).auc,
                    'selection_auc_output': rule.detection_auc(output).auc,
                    'pool_auc': tree_detection_auc(on_held_out, held_out, pool_rows, seed=seed),
                    'sample_auc': tree_detection_auc(on_held_out, held_out, sample, seed=seed),
                    'sample_auc_fitted': tree_detection_auc(on_fitted, fitted, sample, seed=seed),
                    'pool_rows': len(pool_rows), 'sample_rows': len(sample),
                    'fit_rows': len(fitted), 'options': args.options or '',
                    'fit_seconds': fit_seconds, 'probe_seconds': time.perf_counter() - start,
                    'code_revision': TABGRAA_CODE_REVISION, 'machine': machine_description()})


if __name__ == '__main__':
    main()
