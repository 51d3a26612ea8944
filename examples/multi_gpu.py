"""Fit TabGRAA on several GPUs with accelerate, then sample: one process per GPU.

    accelerate launch --multi_gpu --num_processes 4 examples/multi_gpu.py data.csv \\
        --metadata metadata.json --model model.pkl --samples synthetic.csv -n 100000

    # the bundled Adult sample, a pretrained backbone with LoRA adapters
    accelerate launch --multi_gpu --num_processes 2 examples/multi_gpu.py \\
        --backbone distilgpt2 --lora-r 8 --epochs 5

    # no GPU: the same code path on two CPU processes (gloo)
    torchrun --standalone --nproc_per_node 2 examples/multi_gpu.py --device cpu --epochs 2

Nothing here is specific to several processes: `TabGRAASynthesizer` sees the launch (accelerate's
process state) and splits every SFT batch between the processes, sums their gradients, runs the
alignment rounds on the same gathered pools in every process, splits sampled rows between them,
and saves from process 0 only. Run with plain `python` it is the one-process fit. Every process
returns the same rows; only process 0 writes them. See docs/backbones.md.
"""

import argparse
import time

import pandas as pd
from sdv.metadata import Metadata

from tabgraa_sdv import TabGRAASynthesizer
from tabgraa_sdv.cli import demo_paths
from tabgraa_sdv.devices import DataParallel, resolve_device


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data', nargs='?', help='training CSV (default: the bundled Adult sample)')
    parser.add_argument('--metadata', help='SDV metadata JSON (default: detected from the data)')
    parser.add_argument('--model', default='model.pkl', help='where to save the synthesizer')
    parser.add_argument('--samples', default='synthetic.csv', help='where to write the rows')
    parser.add_argument('-n', '--num-rows', type=int, default=10_000)
    parser.add_argument('--epochs', type=int, help='most SFT epochs (default: from data size)')
    parser.add_argument('--rounds', type=int, default=3, help='alignment rounds (0: SFT only)')
    parser.add_argument('--backbone', default='compact',
                        help="'compact', or a Hugging Face causal LM name or local directory")
    parser.add_argument('--lora-r', type=int, help='pretrained backbones: LoRA rank (default: '
                                                   'all weights)')
    parser.add_argument('--device', help="'cpu' to run CPU processes (default: this process's GPU)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.data is None:
        csv, metadata_json = demo_paths()
        args.data, args.metadata = str(csv), args.metadata or str(metadata_json)
    data = pd.read_csv(args.data)
    metadata = Metadata.load_from_json(args.metadata) if args.metadata else \
        Metadata.detect_from_dataframe(data)
    synthesizer = TabGRAASynthesizer(
        metadata, backbone=args.backbone, epochs=args.epochs, rounds=args.rounds,
        lora=None if args.lora_r is None else {'r': args.lora_r}, device=args.device)
    parallel = DataParallel(resolve_device(args.device))
    say = print if parallel.is_main else (lambda *_: None)
    say(f'{parallel.size} process(es); fitting {len(data)} rows with backbone {args.backbone!r}')

    start = time.perf_counter()
    synthesizer.fit(data)
    say(f'fit in {time.perf_counter() - start:.1f} s')
    synthesizer.save(args.model)

    start = time.perf_counter()
    synthetic = synthesizer.sample(args.num_rows)
    say(f'sampled {len(synthetic)} rows in {time.perf_counter() - start:.2f} s')
    if parallel.is_main:
        synthetic.to_csv(args.samples, index=False)
        say(f'saved {args.model} and {args.samples}')


if __name__ == '__main__':
    main()
