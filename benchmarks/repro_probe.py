"""Is a seeded fit the same in every process? Fingerprints of repeated fits.

    python benchmarks/repro_probe.py adult --seed 2 --runs 2 \\
        --options '{"rounds": 0, "column_weights": {"income": 4}, "label_columns": ["income"]}'

Fits ``TabGRAASynthesizer`` with the harness's settings (``anneal_epochs=3,
resampling_factor=4``, ``rounds=3`` unless ``--options`` says otherwise) ``--runs`` times, each in
a fresh Python process (with ``PYTHONHASHSEED`` = the run's index, so string hashing differs
between runs), after the harness's ``seed_everything``. Each run prints and appends to
``benchmarks/results/repro_probe.csv`` the MD5 (first 10 hex digits) of the fitted weights, of
SFT's per-epoch losses, of the alignment history and of ``--sample-rows`` sampled rows. Equal
fingerprints across runs: the fit is reproducible in a plain process. ``--tracemalloc`` fits
with Python's allocation tracing on, as SDGym 0.15.1 does. Each row also carries round 0's
held-out detection AUC in full (comparable with a harness cell's ``alignment_history.csv``), and
``--history-dir`` keeps each run's per-epoch SFT losses and alignment history as JSON, to find
the first epoch at which two runs part.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / 'results' / 'repro_probe.csv'
sys.path.insert(0, str(HERE))
from alignment import append_rows  # noqa: E402
from fit_phases import HARNESS, harness_fit  # noqa: E402


def fingerprint(data):
    return hashlib.md5(data).hexdigest()[:10]


def weights_fingerprint(model):
    """MD5 (10 hex digits) of a torch module's weights, in name order, as CPU bytes."""
    weights = hashlib.md5()
    for _, tensor in sorted(model.state_dict().items()):
        weights.update(tensor.detach().cpu().numpy().tobytes())
    return weights.hexdigest()[:10]


def fit_once(args):
    """One fit in this process; the row of fingerprints."""
    import torch
    from sdgym_benchmark import machine_description
    from sdv.metadata import Metadata

    warnings.simplefilter('ignore')
    folder = args.root / args.dataset
    train = pd.read_csv(folder / 'train.csv')
    if args.max_rows and len(train) > args.max_rows:
        train = train.sample(args.max_rows, random_state=0).reset_index(drop=True)
    metadata = Metadata.load_from_json(folder / 'metadata.json')
    options = json.loads(args.options)
    torch.set_num_threads(args.threads)
    synthesizer, fit_seconds = harness_fit(metadata, train, args.seed, options, args.tracemalloc)
    model = synthesizer._model
    alignment = synthesizer.get_alignment_history()
    if args.history_dir:
        args.history_dir.mkdir(parents=True, exist_ok=True)
        name = (f"{args.dataset}_s{args.seed}_hash{os.environ.get('PYTHONHASHSEED', '')}"
                f"{'_traced' if args.tracemalloc else ''}_{time.strftime('%Y%m%dT%H%M%S')}.json")
        (args.history_dir / name).write_text(json.dumps(
            {'sft': model.history, 'alignment': alignment.to_dict(orient='records')},
            default=float))
    return {
        'dataset': args.dataset, 'seed': args.seed,
        'options': json.dumps({**HARNESS, **options}, sort_keys=True),
        'rows': len(train), 'tracemalloc': args.tracemalloc,
        'python_hash_seed': os.environ.get('PYTHONHASHSEED', ''),
        'weights': weights_fingerprint(model.model),
        'sft_history': fingerprint(
            json.dumps(model.history, sort_keys=True, default=float).encode()),
        'alignment_history': fingerprint(alignment.to_csv(index=False).encode()),
        'round0_detection_auc': (float(alignment['detection_auc'].iloc[0])
                                 if 'detection_auc' in alignment and len(alignment) else None),
        'sample': fingerprint(synthesizer.sample(args.sample_rows).to_csv(index=False).encode()),
        'fit_seconds': round(fit_seconds, 1), 'machine': machine_description(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset')
    parser.add_argument('--root', type=Path, default=HERE.parent.parent / 'shared' / 'datasets')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--options', default='{}', help='JSON overrides of the harness settings')
    parser.add_argument('--runs', type=int, default=2)
    parser.add_argument('--max-rows', type=int, default=None, help='seeded subsample of train.csv')
    parser.add_argument('--sample-rows', type=int, default=5000)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--tracemalloc', action='store_true')
    parser.add_argument('--results', type=Path, default=RESULTS)
    parser.add_argument('--history-dir', type=Path, default=None,
                        help="keep each run's SFT and alignment histories here as JSON")
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(fit_once(args)))
        return
    child_args = list(argv if argv is not None else sys.argv[1:])
    for run in range(args.runs):
        env = dict(os.environ, PYTHONHASHSEED=str(run))
        out = subprocess.run([sys.executable, __file__, *child_args, '--child'], env=env,
                             check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        print(', '.join(f'{k}={v}' for k, v in row.items() if k not in ('machine', 'options')),
              flush=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        append_rows(args.results, [row])


if __name__ == '__main__':
    main()
