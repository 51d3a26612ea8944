"""Capacity probe: does a wider or deeper compact backbone buy fidelity, detection or utility?

Fits ``TabularLM`` (SFT only, no SDV, no alignment) on a table's raw ``train.csv`` with a
``model_config`` override, samples as many rows as the training split, and scores them with
``tabgraa_sdv.metrics.evaluate`` against ``test.csv``. One row per (dataset, seed, config) is
appended to the results file; cells already there are skipped, so the probe is resumable.

    python benchmarks/capacity_probe.py magic --seeds 0 --configs '{}' '{"n_embd": 128, "n_layer": 4}'

``{}`` is the default sizing of ``compact_config``.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import pandas as pd
import torch
from sdv.metadata import Metadata

from tabgraa_sdv.metrics import evaluate
from tabgraa_sdv.model import TabularLM

RESULTS = Path(__file__).parent / 'results' / 'capacity_probe.csv'
METRICS = ('quality_score', 'tree_detection_auc', 'tstr_score', 'dcr_share', 'mia_auc')


def run_cell(folder, seed, config):
    train, test = pd.read_csv(folder / 'train.csv'), pd.read_csv(folder / 'test.csv')
    info = json.loads((folder / 'dataset.json').read_text())
    metadata = Metadata.load_from_json(folder / 'metadata.json')
    lm = TabularLM(model_config=config, seed=seed)
    start = time.perf_counter()
    lm.fit(train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    synthetic = lm.sample(len(train)).astype(train.dtypes.to_dict())
    sample_seconds = time.perf_counter() - start
    scores = evaluate(train, test, synthetic, metadata, target=info['target'], task=info['task'],
                      seed=seed, metrics=METRICS)
    history = lm.loss_values
    shape = lm.model.config
    return {
        'n_embd': shape.n_embd, 'n_layer': shape.n_layer, 'n_head': shape.n_head,
        'parameters': sum(p.numel() for p in lm.model.parameters()),
        'epochs': int((history.phase == 'sft').sum()),
        'best_val_loss': float(history.val_loss.min()),
        **scores, 'fit_seconds': fit_seconds, 'sample_seconds': sample_seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('datasets', nargs='+')
    parser.add_argument('--root', default=Path(__file__).parents[2] / 'shared' / 'datasets', type=Path)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--configs', nargs='+', default=['{}'],
                        help='JSON model_config overrides; {} is the default sizing')
    parser.add_argument('--results', default=RESULTS, type=Path)
    args = parser.parse_args(argv)
    done = pd.read_csv(args.results) if args.results.exists() else pd.DataFrame(
        columns=['dataset', 'seed', 'config'])
    for dataset in args.datasets:
        for seed in args.seeds:
            for config in args.configs:
                key = json.dumps(json.loads(config), sort_keys=True)
                if ((done.dataset == dataset) & (done.seed == seed) & (done.config == key)).any():
                    print(f'skip {dataset} seed {seed} {key}')
                    continue
                row = {'dataset': dataset, 'seed': seed, 'config': key,
                       **run_cell(args.root / dataset, seed, json.loads(config)),
                       'machine': f'{platform.machine()}, {torch.get_num_threads()} torch threads'}
                print(row, flush=True)
                pd.DataFrame([row]).to_csv(args.results, mode='a', index=False,
                                           header=not args.results.exists())
                done = pd.read_csv(args.results)


if __name__ == '__main__':
    main()
