"""Time of one SFT step and of one alignment pool on a benchmark table (docs/performance.md).

    python benchmarks/step_micro.py --dataset shoppers
    python benchmarks/step_micro.py --dataset magic --model-config '{"n_embd": 96}' --profile

Builds the compact model and codec of the table (the default size, or ``--model-config``) with
a one-epoch fit (speed does not depend on how well the model is trained), then times:

* ``sft_step_ms``: one training step as ``train_sft`` runs it (512 rows, 30% in a permuted
  column order, dropout as configured, none by default since 2026-12-04, the rank embedding
  when the model has one; forward, backward, clipping, AdamW), mean of 20 after 3 warm-ups.
  Rows before 2026-12-07 timed the step without the rank embedding;
* ``pool_seconds``: sampling 8,192 token rows (the default alignment pool), mean of 3 after one
  warm-up.

``--profile`` also prints ``torch.profiler``'s operators of 5 steps, by their own CPU time.

To compare two versions of the package, run it with ``PYTHONPATH`` pointing at each checkout;
each row records the commit of the package it imported.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from alignment import append_rows  # noqa: E402  (benchmarks/ is not a package)
from sdgym_benchmark import git_commit, machine_description  # noqa: E402
DEFAULT_ROOT = HERE.parent.parent / 'shared' / 'datasets'
DEFAULT_RESULTS = HERE / 'results' / 'step_micro.csv'


def timed(fn, repeat, warmup):
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def measure(table, model_config=None, profile=False):
    from tabgraa_sdv.backbone import (fold_rank_embedding, install_rank_embedding,
                                      slot_log_probs)
    from tabgraa_sdv.model import TabularLM
    from tabgraa_sdv.sft import slot_orders

    lm = TabularLM(epochs=1, anneal_epochs=0, seed=0, device='cpu',
                   model_config=model_config).fit(table)
    model, tokens = lm.model, torch.as_tensor(lm.codec.encode(table))
    if lm.rank_embedding:  # SFT trains through it; fit folded it away afterwards
        install_rank_embedding(model, lm.codec.token_ranks(), lm.codec.slot_start,
                               lm.codec.slot_size)
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    torch.manual_seed(0)

    def sft_step():
        model.train()
        batch = tokens[torch.randint(0, len(tokens), (512,), generator=generator)]
        order = slot_orders(len(batch), lm.codec.slot_column, lm.codec.slot_position, 0.3,
                            generator, 'cpu')
        optimizer.zero_grad(set_to_none=True)
        loss = -slot_log_probs(model, batch, order, lm.layout).sum() / batch.numel()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step = timed(sft_step, repeat=20, warmup=3)
    if profile:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                sft_step()
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=20))
    if lm.rank_embedding:
        fold_rank_embedding(model)  # sampling runs the plain GPT-2, as after fit
    model.eval()
    lm.set_random_state(0)
    pool = timed(lambda: lm.sample_token_rows(8192), repeat=3, warmup=1)
    return {'n_slots': lm.codec.n_slots, 'vocab_size': lm.codec.vocab_size,
            'n_embd': model.config.n_embd, 'n_layer': model.config.n_layer,
            'sft_step_ms': round(step * 1000, 1), 'pool_seconds': round(pool, 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', default='shoppers')
    parser.add_argument('--root', default=str(DEFAULT_ROOT), help='folder of the tables')
    parser.add_argument('--results', default=str(DEFAULT_RESULTS))
    parser.add_argument('--model-config', type=json.loads, default=None,
                        help='JSON overrides of the compact model size, e.g. \'{"n_embd": 96}\'')
    parser.add_argument('--profile', action='store_true',
                        help="print torch.profiler's operators of 5 steps")
    args = parser.parse_args(argv)

    import tabgraa_sdv

    commit = git_commit(Path(tabgraa_sdv.__file__).resolve().parent.parent)
    table = pd.read_csv(Path(args.root) / args.dataset / 'train.csv')
    measured = measure(table, args.model_config, args.profile)
    row = {'dataset': args.dataset, 'code': commit, **measured,
           'machine': f'{machine_description()}, {torch.get_num_threads()} threads',
           'timestamp': pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds')}
    append_rows(Path(args.results), [row])
    print(row)


if __name__ == '__main__':
    main()
