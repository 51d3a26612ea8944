"""What does each alignment round do on the test split, whether or not selection keeps it?

    python benchmarks/round_probe.py magic --seeds 0 --rounds 1 2 3 --settings '{"reward": "histogram"}'

``fit`` keeps a round only when its held-out detection AUC beats the best earlier round's by
more than one standard error, so a reward whose rounds help a little is never seen on the test
split. This probe runs ``benchmarks/alignment.py``'s cell with that rule replaced by "keep the
latest round whatever its AUC" (the diversity guard still rejects a collapsed round; then
``held_out_auc`` is that rejected round's), for ``rounds`` = each of ``--rounds`` (a run of ``r`` rounds repeats the first
``r - 1`` of a longer one: same seeds), and scores the last round's model as the benchmark does.
Rows go to ``benchmarks/results/round_probe.csv`` (``kept_round`` is the forced round), beside the
SFT-only row of the same table and seed (``rounds`` 0) for comparison; a cell whose row is there
already is skipped.
"""

import json
from pathlib import Path

import pandas as pd

from alignment import SETTINGS, probe_parser, record_row, run_cell, settings_label
from tabgraa_sdv.alignment import Aligner

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'round_probe.csv'


def keep_every_round():
    """From now on every alignment round replaces the best one, whatever its held-out AUC
    (the diversity guard still applies)."""
    Aligner._improves = lambda self, row, best_auc: True


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS)
    parser.add_argument('--rounds', nargs='+', type=int, default=[1, 2, 3])
    parser.add_argument('--objective', default='tabgraa')
    parser.add_argument('--settings', default='{}', help='JSON overrides of the alignment settings')
    args = parser.parse_args(argv)
    keep_every_round()
    done = pd.read_csv(args.results) if args.results.exists() else None
    for name in args.datasets:
        for seed in args.seeds:
            for rounds in [0, *args.rounds]:
                settings = {**SETTINGS, **json.loads(args.settings), 'rounds': rounds}
                objective = 'sft' if rounds == 0 else args.objective
                if done is not None and ((done.dataset == name) & (done.seed == seed) & (
                        done.objective == objective) & (done.rounds == rounds) & (
                        done.settings == settings_label(settings, objective))).any():
                    continue  # this cell's row is there already
                row, history = run_cell(args.root, name, objective, seed, settings)
                last = history[-1] if history else {}
                record_row(args.results, {**row, 'selection': 'latest round',
                                          'held_out_auc': last.get('detection_auc')})


if __name__ == '__main__':
    main()
