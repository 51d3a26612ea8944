"""Probe: can the fitted model learn density-ratio resampling by training on its resampled rows?

    python benchmarks/self_distill_probe.py magic 0 --lr 3e-4 --multiple 2 --rounds 1

Density-ratio resampling (``resampling_factor=4``) lowers tree detection a lot (magic 0.703 ->
0.588, docs/alignment.md) but costs 4x the sampling. The ``distill`` objective tried to put the
same ratio into the weights with a few hundred LoRA steps on an 8,192-row pool and did not get
there. This probe asks the question at scale, with no real row in the language model's loss:

1. load the cached annealed SFT model of ``benchmarks/alignment.py`` (``sft_synthesizer``);
2. fit the resampler's classifier on the real training rows against as many model rows;
3. draw ``multiple x len(train)`` rows, each the resampled choice among 4 candidates
   (``variant='resampled'``), or the same number of plain rows (``variant='plain'``, the control:
   what training on one's own samples does by itself);
4. train every weight on them for one epoch (cosine decay to zero, the SFT trainer), then repeat
   from step 2 for ``rounds`` rounds;
5. score ``len(test)`` plain samples of each round's model with ``tabgraa_sdv.metrics.evaluate``
   on ``blocks`` consecutive blocks (their mean; on magic, quality moves by up to 0.035 between
   blocks of one model).

``--model-config '{"n_embd": 128}'`` fits (and caches) a wider SFT model for the probe instead.
``--drs-reference`` also scores the SFT model sampled with ``resampling_factor=4`` (the target),
as a round-0 row of variant ``drs_reference``. Appends one row per (table, seed, variant, lr,
multiple, blocks, model_config, round) to ``benchmarks/results/self_distill_probe.csv``; round 0
is the SFT model itself. Results and what they show: docs/alignment.md.
"""

import argparse
import json
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from alignment import HERE, WORK, append_rows, load_table, sft_synthesizer
from sdgym_benchmark import machine_description
from tabgraa_sdv.metrics import evaluate
from tabgraa_sdv.resampling import RESAMPLER_ROWS, RatioResampler
from tabgraa_sdv.sft import split_rows, train_sft

RESULTS = HERE / 'results' / 'self_distill_probe.csv'
FACTOR = 4


def score(synthesizer, train, test, metadata, info, blocks, seed):
    """Mean of ``evaluate`` over ``blocks`` consecutive samples of ``len(test)`` rows."""
    synthesizer.reset_sampling()
    rows = [evaluate(train, test, synthesizer.sample(len(test)), metadata, info['target'],
                     info['task'], seed=seed) for _ in range(blocks)]
    return pd.DataFrame(rows).mean().to_dict()


def self_training_rows(lm, real_tokens, n_rows, variant, seed):
    """``n_rows`` token rows of the current model: resampled (1 of ``FACTOR``) or plain.

    Not ``TabularLM.fit_resampler`` and ``sample``: those seed the classifier with the model's
    own seed and reset its sampler, and ``sample`` decodes; each round here needs its own seed
    and token rows."""
    if variant == 'plain':
        return lm.sample_token_rows(n_rows)
    n_real = min(len(real_tokens), RESAMPLER_ROWS)
    real = real_tokens[np.random.default_rng(seed).choice(len(real_tokens), n_real,
                                                          replace=False)]
    resampler = RatioResampler(lm.codec, FACTOR, seed).fit(real, lm.sample_token_rows(n_real))
    chosen = []
    for begin in range(0, n_rows, 16_384):  # memory bounded by the chunk
        n = min(16_384, n_rows - begin)
        chosen.append(resampler.choose(lm.sample_token_rows(FACTOR * n), lm._generator))
    return np.concatenate(chosen)


def sft_model(root, name, seed, model_config):
    """The cached annealed SFT synthesizer of ``benchmarks/alignment.py`` (trained on first
    use), or with a ``model_config`` override one fitted here (defaults otherwise) and cached
    beside it."""
    if not model_config:
        return sft_synthesizer(root, name, seed, anneal_epochs=3)[0]
    label = '_'.join(f'{k}{v}' for k, v in sorted(model_config.items()))
    path = WORK / f'sft_{name}_seed{seed}_{label}.pkl'
    if not path.exists():
        from tabgraa_sdv import TabGRAASynthesizer

        train, _, metadata, _ = load_table(root, name)
        synthesizer = TabGRAASynthesizer(metadata, rounds=0, seed=seed, model_config=model_config)
        synthesizer.fit(train)
        with open(path, 'wb') as f:
            pickle.dump(synthesizer, f)
    with open(path, 'rb') as f:
        return pickle.load(f)


def run(name, seed, variant, lr, multiple, rounds, blocks, root, results=RESULTS,
        model_config=None, drs_reference=False):
    train, test, metadata, info = load_table(root, name)
    synthesizer = sft_model(root, name, seed, model_config)
    lm = synthesizer._model
    real_tokens = lm.codec.encode(synthesizer._data_processor.transform(train))
    base = {'dataset': name, 'seed': seed, 'variant': variant, 'learning_rate': lr,
            'multiple': multiple, 'blocks': blocks,
            'model_config': json.dumps(model_config or {}),
            'machine': f'{machine_description()}, {torch.get_num_threads()} torch threads'}

    def record(**fields):  # score the model as it is now and append the row at once
        row = dict(base, **fields, **score(synthesizer, train, test, metadata, info, blocks,
                                           seed))
        append_rows(results, [row])
        print(row, flush=True)

    record(round=0, seconds=0.0)
    if drs_reference:  # the same model sampled with resampling_factor=FACTOR: the target
        lm.resampling_factor = FACTOR
        lm.fit_resampler(real_tokens)
        record(variant='drs_reference', round=0, seconds=0.0)
        lm.resampling_factor, lm.resampler = 1, None
    for round_ in range(1, rounds + 1):
        start = time.perf_counter()
        lm.set_random_state(seed * 1000 + round_)
        pool = self_training_rows(lm, real_tokens, multiple * len(real_tokens), variant,
                                  seed + round_)
        fit_index, val_index = split_rows(len(pool), 0.05, seed + round_)
        torch.manual_seed(seed * 1000 + round_)  # dropout draws from torch's global stream
        history = train_sft(lm.model, pool[fit_index], pool[val_index], lm.layout,
                            lm.codec.slot_column, lm.codec.slot_position, epochs=1,
                            batch_size=lm.batch_size, learning_rate=lr,
                            permutation_rate=lm.permutation_rate, anneal_epochs=0,
                            seed=seed + round_, device=lm.device)
        record(round=round_, seconds=time.perf_counter() - start,
               pool_val_loss=history[-1]['val_loss'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset')
    parser.add_argument('seed', type=int)
    parser.add_argument('--variant', choices=('resampled', 'plain'), default='resampled')
    parser.add_argument('--lr', type=float, default=3e-4)
    parser.add_argument('--multiple', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=1)
    parser.add_argument('--blocks', type=int, default=2)
    parser.add_argument('--root', default=str(HERE.parents[1] / 'shared' / 'datasets'))
    parser.add_argument('--results', type=Path, default=RESULTS)
    parser.add_argument('--model-config', type=json.loads, default={},
                        help='JSON model_config of an SFT model fitted (and cached) for the '
                             'probe; default: the cached model of benchmarks/alignment.py')
    parser.add_argument('--drs-reference', action='store_true',
                        help='also score the SFT model sampled with resampling_factor=4')
    args = parser.parse_args(argv)
    run(args.dataset, args.seed, args.variant, args.lr, args.multiple, args.rounds, args.blocks,
        args.root, args.results, args.model_config, args.drs_reference)


if __name__ == '__main__':
    main()
