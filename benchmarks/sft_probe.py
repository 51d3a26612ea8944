"""SFT probe: fit TabularLM (no SDV) on a table's raw train.csv, report fit time, sampling speed
and SDV quality against test.csv.

    python benchmarks/sft_probe.py adult 15 "dict(permutation_rate=0.5)"
    python benchmarks/sft_probe.py adult 0                     # 0 = epochs=None (early stopping)
"""

import sys
import time

import pandas as pd
from sdv.evaluation.single_table import evaluate_quality
from sdv.metadata import Metadata

from tabgraa_sdv.model import TabularLM


def main(name, epochs, options='dict()'):
    folder = f'../shared/datasets/{name}'
    train, test = pd.read_csv(f'{folder}/train.csv'), pd.read_csv(f'{folder}/test.csv')
    metadata = Metadata.load_from_json(f'{folder}/metadata.json')
    kwargs = eval(options, {'dict': dict})  # noqa: S307 - a local benchmark's own argument
    epochs = int(epochs)
    lm = TabularLM(epochs=epochs if epochs > 0 else None, **kwargs)
    start = time.time()
    lm.fit(train)
    fit_seconds = time.time() - start
    print('fit', round(fit_seconds, 1), 's, epochs', len(lm.history),
          'val loss', [round(h['val_loss'], 4) for h in lm.history])
    start = time.time()
    synthetic = lm.sample(len(test)).astype(train.dtypes.to_dict())
    print('rows/s', round(len(test) / (time.time() - start)))
    print('quality', round(evaluate_quality(test, synthetic, metadata, verbose=False).get_score(), 4))


if __name__ == '__main__':
    main(*sys.argv[1:])
