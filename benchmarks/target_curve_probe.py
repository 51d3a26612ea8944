"""Does the model's p(target | other columns) still improve when early stopping ends SFT?

    python benchmarks/target_curve_probe.py magic --seeds 0 --epochs 40

Early stopping watches the validation loss of all tokens of a row. On a table of many numeric
columns almost all of them are features (magic: 30 of 31), so the stop is chosen by how the
features' joint density over-fits, whatever the target's conditional is doing. This probe trains
the compact model as ``fit`` does (same codec, initialisation, split, optimizer and schedule,
planned for the default epoch bound) but for a fixed number of epochs, and after every epoch
records the validation loss, the target slot's validation loss (canonical column order: the
target is scored given every other column) and the model's own ``p(target | other columns)``
ROC AUC on the real test rows (``lm_target_probe.target_auc``). One row per epoch is appended to
``benchmarks/results/target_curve_probe.csv``.
"""

import json
import time
from pathlib import Path

import torch

from alignment import append_rows, load_table, probe_parser
from lm_target_probe import encodable_test_rows, target_auc
from sdgym_benchmark import machine_description

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'target_curve_probe.csv'


def curve(root, name, seed, epochs, options, results=RESULTS):
    from tabgraa_sdv import TabGRAASynthesizer
    from tabgraa_sdv.backbone import (build_compact, compact_config, install_rank_embedding,
                                       slot_log_probs)
    from tabgraa_sdv.sft import _EpochRunner, default_epochs, slot_orders, split_rows

    train, test, metadata, info = load_table(root, name)
    target = info['target']
    # A one-epoch fit gives the data processor and the codec of a real fit; the model is then
    # rebuilt from the same seed and trained here epoch by epoch.
    synthesizer = TabGRAASynthesizer(metadata, epochs=1, rounds=0, anneal_epochs=0, seed=seed,
                                     **options.get('synthesizer', {}))
    synthesizer.fit(train)
    lm = synthesizer._model
    tokens = lm.codec.encode(synthesizer._data_processor.transform(train))
    config = compact_config(lm.codec.vocab_size, lm.codec.n_slots, len(tokens),
                            **options.get('model_config', {}))
    lm.model = build_compact(config, seed=seed).to(lm.device)
    if lm.rank_embedding:
        install_rank_embedding(lm.model, lm.codec.token_ranks(), lm.codec.slot_start,
                               lm.codec.slot_size)
    train_index, val_index = split_rows(len(tokens), 0.1, seed)
    run = _EpochRunner(lm.model, tokens[train_index], tokens[val_index], lm.layout,
                       lm.codec.slot_column, lm.codec.slot_position, lm.batch_size,
                       lm.permutation_rate, seed, lm.device)
    optimizer, scheduler = run.optimizer(lm.learning_rate, options.get('weight_decay', 0.01),
                                         default_epochs(len(run.train_data)))
    target_slots = [s for s, c in enumerate(lm.codec.slot_column)
                    if lm.codec.columns[c].name == target]
    val = run.val_data
    canonical = slot_orders(len(val), lm.codec.slot_column, lm.codec.slot_position, 0.0, None,
                            lm.device)
    usable = encodable_test_rows(synthesizer, train, test, target)
    label = json.dumps(options, sort_keys=True)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        record = run.epoch(epoch, 'sft', optimizer, scheduler)
        with torch.no_grad():
            lm.model.eval()
            target_nll = -slot_log_probs(lm.model, val, canonical, lm.layout)[:, target_slots]
        row = {'dataset': name, 'seed': seed, 'options': label, 'epoch': epoch,
               'train_loss': record['train_loss'], 'val_loss': record['val_loss'],
               'target_val_nll': float(target_nll.sum(1).mean()),
               'lm_target_auc': target_auc(synthesizer, train, usable, target),
               'epoch_seconds': time.perf_counter() - start, 'machine': machine_description()}
        append_rows(results, [row])
        print(f"{name} seed {seed} epoch {epoch}: val {row['val_loss']:.4f}  target nll "
              f"{row['target_val_nll']:.4f}  AUC {row['lm_target_auc']:.4f}", flush=True)


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS)
    parser.add_argument('--epochs', type=int, default=40)
    parser.add_argument('--options', default='{}',
                        help='JSON: {"synthesizer": {...}, "model_config": {...}, '
                             '"weight_decay": x}')
    args = parser.parse_args(argv)
    for name in args.datasets:
        for seed in args.seeds:
            curve(args.root, name, seed, args.epochs, json.loads(args.options), args.results)


if __name__ == '__main__':
    main()
