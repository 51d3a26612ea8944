"""Micro-benchmarks behind the sampler's design (docs/performance.md).

    python benchmarks/sampler_micro.py

1. One categorical draw per row from ``[rows, slot size]`` logits: the Gumbel-max trick,
   ``torch.multinomial`` and the inverse CDF (one uniform per row, searched in the cumulative
   softmax), at Adult's slot sizes.
2. The compact transformer alone (Adult's size: 2 layers x 64, 17 slots), KV-cached, one token
   per step: the FLOP-bound ceiling of sampling rows/s before logits and draws.
3. The whole sampler on Adult by batch size (after a 1-epoch fit; speed does not depend on how
   well the model is trained).
"""

import time

import torch

from tabgraa_sdv.backbone import build_compact, compact_config
from tabgraa_sdv.sampling import cache_keyword, cached_forward


def timed(fn, repeat=10):
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def draws(rows=16384):
    generator = torch.Generator().manual_seed(0)
    print(f'one draw per row, {rows} rows (ms per slot)')
    for size in (2, 42, 119, 271):
        logits = torch.randn(rows, size)

        def gumbel():
            noise = torch.empty_like(logits).exponential_(generator=generator)
            return (logits - noise.log()).argmax(-1)

        def multinomial():
            return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)

        def inverse_cdf():
            cdf = torch.softmax(logits, -1).cumsum_(-1)
            u = torch.rand(rows, 1, generator=generator) * cdf[:, -1:]
            return torch.searchsorted(cdf, u, right=True)

        cells = [f'{fn.__name__} {timed(fn) * 1000:.2f}' for fn in (gumbel, multinomial, inverse_cdf)]
        print(f'  slot of {size:>3} tokens: ' + ', '.join(cells))


def transformer(batch=2048, slots=17):
    config = compact_config(1300, slots, 30_000)
    model = build_compact(config, seed=0).eval()
    ids = torch.zeros(batch, 1, dtype=torch.long)

    keyword = cache_keyword(model.transformer)

    @torch.no_grad()
    def decode():
        _, cache = cached_forward(model.transformer, keyword, None, input_ids=ids,
                                  position_ids=torch.zeros_like(ids))
        for step in range(1, slots):
            _, cache = cached_forward(model.transformer, keyword, cache, input_ids=ids,
                                      position_ids=torch.full_like(ids, step))

    seconds = timed(decode, repeat=5)
    print(f'transformer alone, {batch} rows x {slots} steps: {seconds:.3f} s '
          f'= {batch / seconds:,.0f} rows/s')


def batch_sizes(rows=16384):
    """Whole sampler (TabularLM.sample) on Adult after a 1-epoch fit, by batch size."""
    import pandas as pd

    from tabgraa_sdv.model import TabularLM

    lm = TabularLM(epochs=1).fit(pd.read_csv('../shared/datasets/adult/train.csv'))
    for batch in (2048, 4096, 8192, 16384):
        lm.sample_batch_size = batch
        print(f'TabularLM.sample({rows}), batches of {batch:>5}: '
              f'{rows / timed(lambda: lm.sample(rows), repeat=2):,.0f} rows/s')


if __name__ == '__main__':
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    draws()
    transformer()
    batch_sizes()
