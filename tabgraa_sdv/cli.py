"""Command line: ``tabgraa demo | fit | sample | evaluate | benchmark``.

    tabgraa demo                                   # fit the bundled Adult sample, print quality
    tabgraa fit data.csv --metadata m.json -o model.pkl [--epochs N] [--rounds R]
                [--backbone distilgpt2 --lora-r 8]
    tabgraa sample model.pkl -n 1000 -o out.csv [--condition col=value ...]
    tabgraa evaluate real.csv synthetic.csv [--metadata m.json]
    tabgraa benchmark [--quick] [--datasets ...]   # benchmarks/sdgym_benchmark.py (bench extra)
"""

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

import pandas as pd


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def demo_paths():
    data = resources.files('tabgraa_sdv') / 'data'
    return Path(str(data / 'adult_demo.csv')), Path(str(data / 'adult_demo_metadata.json'))


def _read_csv(path):
    path = Path(path)
    if not path.is_file():
        raise CLIError(f'No such file: {path}')
    return pd.read_csv(path)


def _load_metadata(path, data, table_name):
    from sdv.metadata import Metadata

    if path is None:
        return Metadata.detect_from_dataframe(data, table_name=table_name)
    path = Path(path)
    if not path.is_file():
        raise CLIError(f'No such metadata file: {path}')
    return Metadata.load_from_json(path)


# Options of `fit` and `demo` passed to TabGRAASynthesizer under the same name when given.
MODEL_OPTIONS = ('epochs', 'anneal_epochs', 'batch_size', 'learning_rate', 'backbone', 'rounds',
                 'objective', 'reward', 'alignment_learning_rate', 'resampling_factor',
                 'label_columns', 'device')


def _model_kwargs(args):
    kwargs = {'verbose': not args.quiet, 'seed': args.seed}
    for name in MODEL_OPTIONS:
        if getattr(args, name, None) is not None:
            kwargs[name] = getattr(args, name)
    if getattr(args, 'lora_r', None) is not None:
        kwargs['lora'] = {'r': args.lora_r, 'lora_alpha': 2 * args.lora_r}
    return kwargs


def _is_main_process(device):
    """False in the processes but the first of an ``accelerate launch`` (they write nothing)."""
    from tabgraa_sdv.devices import DataParallel, resolve_device

    return DataParallel(resolve_device(device)).is_main


def cmd_demo(args):
    from sdv.evaluation.single_table import evaluate_quality

    from tabgraa_sdv import TabGRAASynthesizer

    csv, metadata_json = demo_paths()
    data = pd.read_csv(csv)
    metadata = _load_metadata(metadata_json, data, 'adult_demo')
    train, holdout = data.iloc[:3000], data.iloc[3000:]
    synthesizer = TabGRAASynthesizer(metadata, **_model_kwargs(args))
    start = time.perf_counter()
    synthesizer.fit(train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    synthetic = synthesizer.sample(len(holdout))
    sample_seconds = time.perf_counter() - start
    print(synthetic.head().to_string())
    report = evaluate_quality(holdout, synthetic, metadata, verbose=False)
    print(f'\nfit on {len(train)} rows of UCI Adult in {fit_seconds:.1f} s; '
          f'sampled {len(synthetic)} rows in {sample_seconds:.2f} s')
    print(f'SDV quality score vs {len(holdout)} held-out real rows: {report.get_score():.4f}')


def cmd_fit(args):
    from tabgraa_sdv import TabGRAASynthesizer

    data = _read_csv(args.data)
    metadata = _load_metadata(args.metadata, data, Path(args.data).stem)
    synthesizer = TabGRAASynthesizer(metadata, **_model_kwargs(args))
    synthesizer.fit(data)
    synthesizer.save(args.output)  # by the first process only, in a multi-process launch
    if _is_main_process(synthesizer.device):
        print(f'saved {args.output}')


def _parse_condition(text):
    if '=' not in text:
        raise CLIError(f"--condition must look like column=value, got {text!r}")
    column, value = text.split('=', 1)
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        pass  # a bare string
    return column, value


def cmd_sample(args):
    from sdv.sampling import Condition

    from tabgraa_sdv import TabGRAASynthesizer

    if not Path(args.model).is_file():
        raise CLIError(f'No such model file: {args.model}')
    synthesizer = TabGRAASynthesizer.load(args.model)
    if args.condition:
        values = dict(_parse_condition(text) for text in args.condition)
        synthetic = synthesizer.sample_from_conditions([Condition(values, num_rows=args.num_rows)])
    else:
        synthetic = synthesizer.sample(args.num_rows)
    if _is_main_process(synthesizer.device):
        synthetic.to_csv(args.output, index=False)
        print(f'wrote {len(synthetic)} rows to {args.output}')


def cmd_evaluate(args):
    from sdv.evaluation.single_table import evaluate_quality

    real = _read_csv(args.real)
    synthetic = _read_csv(args.synthetic)
    metadata = _load_metadata(args.metadata, real, Path(args.real).stem)
    report = evaluate_quality(real, synthetic, metadata, verbose=False)
    print(report.get_properties().to_string(index=False))
    print(f'quality_score {report.get_score():.4f}')


def benchmark_script():
    """benchmarks/sdgym_benchmark.py of the source checkout this package runs from."""
    return Path(__file__).resolve().parents[1] / 'benchmarks' / 'sdgym_benchmark.py'


def cmd_benchmark(argv):
    """Forward to ``benchmarks/sdgym_benchmark.py``'s ``main``; it imports SDGym (the optional
    ``bench`` extra) only when it runs, so this package never imports it."""
    import importlib

    script = benchmark_script()
    if not script.is_file():
        raise CLIError(f'{script} not found: `tabgraa benchmark` runs from a source checkout '
                       "installed with pip install -e '.[bench]'.")
    if str(script.parent) not in sys.path:
        sys.path.insert(0, str(script.parent))
    return importlib.import_module('sdgym_benchmark').main(argv)


def build_parser():
    from tabgraa_sdv.alignment import OBJECTIVES as OBJECTIVE_CHOICES
    from tabgraa_sdv.rewards import REWARDS as REWARD_CHOICES

    parser = argparse.ArgumentParser(prog='tabgraa', description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)

    def model_options(p):
        p.add_argument('--backbone', help="'compact' (default) or a Hugging Face causal LM name "
                                          "or local directory, e.g. distilgpt2")
        p.add_argument('--lora-r', dest='lora_r', type=int,
                       help='pretrained backbones: train LoRA adapters of this rank '
                            '(default: all weights)')
        p.add_argument('--epochs', type=int, help='most SFT epochs (default: from data size)')
        p.add_argument('--anneal-epochs', dest='anneal_epochs', type=int,
                       help='compact backbone: epochs of decaying learning rate after an early '
                            'stop (default: 3; 0 skips them)')
        p.add_argument('--batch-size', dest='batch_size', type=int, help='rows per SFT step')
        p.add_argument('--learning-rate', dest='learning_rate', type=float,
                       help="SFT learning rate (default: 3e-3, the compact model's; about "
                            '5e-5 for all the weights of a pretrained one, 2e-4 with LoRA)')
        p.add_argument('--rounds', type=int, help='TabGRAA alignment rounds; 0: SFT only '
                                                  '(default: 3)')
        p.add_argument('--resampling-factor', dest='resampling_factor', type=int,
                       help='compact backbone: candidate rows per sampled row, one kept by '
                            'estimated density ratio (default: 1, off)')
        p.add_argument('--label-column', dest='label_columns', action='append',
                       metavar='COLUMN',
                       help='compact backbone: a column a downstream model predicts, redrawn '
                            'from a gradient-boosting model of it given the other columns '
                            '(repeat for several; default: none)')
        p.add_argument('--objective', choices=OBJECTIVE_CHOICES,
                       help='alignment objective (default: tabgraa)')
        p.add_argument('--reward', choices=REWARD_CHOICES,
                       help='alignment reward (default: logodds)')
        p.add_argument('--alignment-learning-rate', dest='alignment_learning_rate', type=float,
                       help='learning rate of the alignment steps (default: 2e-5)')
        p.add_argument('--device', help="'cpu', 'cuda', 'mps' (default: best available)")
        p.add_argument('--seed', type=int, default=0)
        p.add_argument('--quiet', action='store_true', help='no progress bars')

    p = sub.add_parser('demo', help='fit the bundled Adult sample and print its quality score')
    model_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser('fit', help='fit a synthesizer on a CSV file and save it')
    p.add_argument('data', help='training CSV')
    p.add_argument('--metadata', help='SDV metadata JSON (default: detected from the data)')
    p.add_argument('-o', '--output', required=True, help='where to save the synthesizer (.pkl)')
    model_options(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser('sample', help='sample rows from a saved synthesizer')
    p.add_argument('model', help='a synthesizer saved by `tabgraa fit`')
    p.add_argument('-n', '--num-rows', dest='num_rows', type=int, required=True)
    p.add_argument('-o', '--output', required=True, help='output CSV')
    p.add_argument('--condition', action='append', metavar='COLUMN=VALUE',
                   help='fix a column to a value (repeatable); values parse as JSON if they can')
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser('evaluate', help='SDV quality score of synthetic rows against real rows')
    p.add_argument('real')
    p.add_argument('synthetic')
    p.add_argument('--metadata', help='SDV metadata JSON (default: detected from the real data)')
    p.set_defaults(func=cmd_evaluate)

    # Parsed by benchmarks/sdgym_benchmark.py itself (see main); listed here for --help.
    sub.add_parser('benchmark', add_help=False,
                   help='SDGym benchmark of TabGRAA and baselines (bench extra); '
                        '`tabgraa benchmark --help` for its options')
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['benchmark']:
        try:
            return cmd_benchmark(argv[1:])
        except CLIError as error:
            print(f'tabgraa benchmark: error: {error}', file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CLIError as error:
        print(f'tabgraa {args.command}: error: {error}', file=sys.stderr)
        return 2
    except ValueError as error:
        print(f'tabgraa {args.command}: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
