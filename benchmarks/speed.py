"""Fit time, sampling speed and SDV quality of TabGRAA beside CTGAN and GaussianCopula.

Usage (one torch process at a time on this 2-core machine):

    python benchmarks/speed.py --dataset ../shared/datasets/adult
    python benchmarks/speed.py --synthesizers TabGRAA      # re-run one cell

Each synthesizer is one cell: fit on train.csv, sample as many rows as test.csv holds (timed),
then SDV ``evaluate_quality`` against the test split. Every finished cell is appended to
``benchmarks/results/speed.csv`` (with the machine, torch threads and git commit), and cells
already there are skipped unless ``--force`` is given, so an interrupted run resumes.
"""

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / 'results' / 'speed.csv'
SYNTHESIZERS = ['TabGRAA', 'GaussianCopula', 'CTGAN']


def make_synthesizer(name, metadata, seed):
    if name == 'TabGRAA':
        from tabgraa_sdv import TabGRAASynthesizer

        return TabGRAASynthesizer(metadata, rounds=0, seed=seed)
    if name == 'CTGAN':
        from sdv.single_table import CTGANSynthesizer

        return CTGANSynthesizer(metadata)
    if name == 'GaussianCopula':
        from sdv.single_table import GaussianCopulaSynthesizer

        return GaussianCopulaSynthesizer(metadata)
    raise ValueError(f'Unknown synthesizer {name!r}; choose from {SYNTHESIZERS}.')


def git_commit():
    try:
        out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True)
        dirty = subprocess.run(['git', 'status', '--porcelain'], capture_output=True, text=True)
        return out.stdout.strip() + ('+dirty' if dirty.stdout.strip() else '')
    except OSError:
        return 'unknown'


def run_cell(name, dataset_dir, seed):
    import torch
    from sdv.evaluation.single_table import evaluate_quality
    from sdv.metadata import Metadata

    dataset_dir = Path(dataset_dir)
    train = pd.read_csv(dataset_dir / 'train.csv')
    test = pd.read_csv(dataset_dir / 'test.csv')
    metadata = Metadata.load_from_json(dataset_dir / 'metadata.json')

    synth = make_synthesizer(name, metadata, seed)
    start = time.perf_counter()
    synth.fit(train)
    fit_seconds = time.perf_counter() - start

    start = time.perf_counter()
    synthetic = synth.sample(len(test))
    sample_seconds = time.perf_counter() - start

    report = evaluate_quality(test, synthetic, metadata, verbose=False)
    return {
        'dataset': dataset_dir.name,
        'synthesizer': name,
        'seed': seed,
        'fit_seconds': round(fit_seconds, 2),
        'sample_rows': len(synthetic),
        'sample_seconds': round(sample_seconds, 3),
        'rows_per_second': round(len(synthetic) / sample_seconds, 1),
        'quality_score': round(report.get_score(), 4),
        'parameters': json.dumps(
            {k: v for k, v in synth.get_parameters().items() if k != 'metadata'}, default=str
        ),
        'torch_threads': torch.get_num_threads(),
        'cpus': os.cpu_count(),
        'machine': platform.processor() or platform.machine(),
        'commit': git_commit(),
        'finished_at': pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds'),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='../shared/datasets/adult')
    parser.add_argument('--synthesizers', nargs='+', default=SYNTHESIZERS, choices=SYNTHESIZERS)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--results', default=str(RESULTS))
    parser.add_argument('--force', action='store_true', help='re-run cells already in results')
    args = parser.parse_args(argv)

    results = Path(args.results)
    done = pd.read_csv(results) if results.exists() else pd.DataFrame()
    dataset = Path(args.dataset).name
    for name in args.synthesizers:
        if not args.force and not done.empty and (
            (done.dataset == dataset) & (done.synthesizer == name) & (done.seed == args.seed)
        ).any():
            print(f'skip {name} on {dataset}: already in {results}')
            continue
        print(f'running {name} on {dataset} ...', flush=True)
        row = run_cell(name, args.dataset, args.seed)
        print(json.dumps(row, indent=1), flush=True)
        results.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([row]).to_csv(results, mode='a', header=not results.exists(), index=False)


if __name__ == '__main__':
    main()
