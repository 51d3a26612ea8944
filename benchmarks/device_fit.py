"""A harness cell's TabGRAA fit on another device (a GPU), its rows scored here on the CPU.

    # where the device is: fit and sample; writes <dataset>_<synthesizer>_s<seed>_<device>.csv/.json
    python benchmarks/device_fit.py fit adult --seed 0 --device cuda --out OUT
    # here: score those rows as the harness scores a cell; appends to results/device_fit.csv
    python benchmarks/device_fit.py score OUT/adult_TabGRAA_s0_cuda.json

``fit`` fits ``TabGRAASynthesizer`` with the current code revision's harness settings for the
table (``synthesizer_spec`` and ``tabgraa_kwargs`` of ``sdgym_benchmark.py``, ``device`` added),
after the harness's ``seed_everything``, in this one process and without SDGym (the GPU machine
has neither SDGym nor a network). It times the fit and each phase (SFT, alignment, resampler),
samples as many rows as the training split has, as SDGym does, and writes the rows and a JSON of
timings, versions, the kept round and a fingerprint of the weights. ``score`` runs
``tabgraa_sdv.metrics.evaluate`` on those rows with the harness's defaults (5,000 rows for the
distance metrics, the cell's seed), so the row sits beside the CPU cells of
``results/sdgym.csv`` (whose fit times include SDGym's allocation tracing; these do not).
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / 'results' / 'device_fit.csv'
sys.path.insert(0, str(HERE))
from alignment import append_rows, load_table  # noqa: E402
from fit_phases import harness_fit, time_phases  # noqa: E402
from repro_probe import weights_fingerprint  # noqa: E402
from sdgym_benchmark import (DEFAULT_DATA_DIR, git_commit, kept_round_of,  # noqa: E402
                             machine_description, package_versions, synthesizer_spec,
                             tabgraa_kwargs)

VERSIONS = ('torch', 'transformers', 'peft', 'sdv', 'pandas', 'numpy', 'scikit-learn')


def fit(args):
    import torch
    from sdv.metadata import Metadata

    # the training split only: a GPU machine's copy of the table needs no test.csv
    folder = args.data_dir / args.dataset
    manifest = json.loads((folder / 'dataset.json').read_text())
    metadata = Metadata.load_from_json(folder / 'metadata.json')
    train = pd.read_csv(folder / 'train.csv')
    spec = synthesizer_spec(args.synthesizer, quick=args.quick, device=args.device)
    spec.update(target=manifest.get('target'), task=manifest.get('task'))
    suffix = ''
    if args.batch_size is not None:  # a speed probe off the harness's settings, labelled so
        spec['kwargs']['batch_size'] = args.batch_size
        spec['settings'] += f'; batch_size={args.batch_size}'
        suffix = f'_b{args.batch_size}'
    kwargs = tabgraa_kwargs(spec)
    times = time_phases()
    synthesizer, fit_seconds = harness_fit(metadata, train, args.seed, kwargs)
    start = time.perf_counter()
    synthetic = synthesizer.sample(len(train))
    sample_seconds = time.perf_counter() - start
    loss = synthesizer.get_loss_values()
    name = (f'{args.dataset}_{args.synthesizer}_s{args.seed}_{args.device.replace(":", "")}'
            f'{suffix}')
    args.out.mkdir(parents=True, exist_ok=True)
    synthetic.to_csv(args.out / f'{name}.csv', index=False)
    record = {
        'dataset': args.dataset, 'synthesizer': args.synthesizer, 'seed': args.seed,
        'settings': spec['settings'], 'device': str(synthesizer._model.device),
        'device_name': (torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''),
        'machine': machine_description(), 'threads': torch.get_num_threads(),
        'fit_seconds': round(fit_seconds, 2),
        **{f'{phase}_seconds': round(seconds, 2) for phase, seconds in times.items()},
        'sample_seconds': round(sample_seconds, 2),
        'sample_rows_per_second': round(len(train) / sample_seconds),
        'batch_size': synthesizer.batch_size,
        'sft_epochs': int((loss['Phase'] == 'sft').sum()),
        'kept_round': kept_round_of(synthesizer.get_alignment_history()),
        'weights': weights_fingerprint(synthesizer._model.model),
        'synthetic_csv': f'{name}.csv', 'versions': package_versions(VERSIONS),
        # 'unknown' where the checkout travelled without its .git (as to the GPU machine)
        'git_commit': git_commit(),
    }
    (args.out / f'{name}.json').write_text(json.dumps(record, indent=1))
    print(json.dumps(record), flush=True)


def score(args):
    from tabgraa_sdv.metrics import evaluate

    record = json.loads(args.record.read_text())
    train, test, metadata, manifest = load_table(args.data_dir, record['dataset'])
    synthetic = pd.read_csv(args.record.parent / record['synthetic_csv'], low_memory=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        scores = evaluate(train, test, synthetic, metadata, target=manifest['target'],
                          task=manifest['task'], max_rows=args.metric_rows, seed=record['seed'])
    versions_ = record.pop('versions')
    row = {**record, **{k: round(v, 6) for k, v in scores.items()},
           'versions': ' '.join(f'{k} {v}' for k, v in versions_.items()),
           'scored_on': machine_description()}
    print(', '.join(f'{k}={row[k]}' for k in ('dataset', 'device', *scores, 'fit_seconds')))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    append_rows(args.results, [row])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    fit_parser = commands.add_parser('fit', help='fit and sample on --device; write rows + JSON')
    fit_parser.add_argument('dataset')
    fit_parser.add_argument('--synthesizer', default='TabGRAA', choices=['TabGRAA', 'TabGRAA-SFT'])
    fit_parser.add_argument('--seed', type=int, default=0)
    fit_parser.add_argument('--device', default='cuda')
    fit_parser.add_argument('--out', type=Path, required=True)
    fit_parser.add_argument('--quick', action='store_true',
                            help="the harness's tiny --quick budgets (a smoke test)")
    fit_parser.add_argument('--batch-size', type=int, default=None,
                            help='SFT rows per step instead of the harness\'s (a speed probe; '
                                 'the learning rate is left as it is)')
    score_parser = commands.add_parser('score', help="score a fit's rows; append to --results")
    score_parser.add_argument('record', type=Path, help='the JSON that fit wrote')
    score_parser.add_argument('--metric-rows', type=int, default=5000)
    score_parser.add_argument('--results', type=Path, default=RESULTS)
    for sub in (fit_parser, score_parser):
        sub.add_argument('--data-dir', type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    warnings.simplefilter('ignore')
    (fit if args.command == 'fit' else score)(args)


if __name__ == '__main__':
    main()
