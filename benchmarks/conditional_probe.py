"""Does conditional sampling follow its condition? A probe on the classification tables.

    python benchmarks/conditional_probe.py --datasets magic adult --seeds 0

For each table and seed: fit ``TabGRAASynthesizer`` (SFT only, ``rounds=0``, defaults
otherwise), then sample as many rows per class of the target as the test split holds, each
batch with the target fixed by ``sample_from_conditions`` (the other columns are generated
after it, in a column order unconditional sampling never uses). A gradient-boosting classifier
trained on the real training rows (target from the other columns) then scores:

* ``conditional_auc``: its AUC on the conditional rows, against the class each was asked for.
  Rows that ignore their condition score 0.5; rows as the real ones score ``real_auc``.
* ``unconditional_auc``: the same on as many unconditionally sampled rows (the table's own
  column order), against the class they were sampled with.
* ``real_auc``: the same on the real test rows (the ceiling).
* ``quality_score``, ``tree_detection_auc``: the unconditional rows against the test split
  (``tabgraa_sdv.metrics``), so that a change to training's column orders shows what it costs
  unconditional sampling.

Rows are appended to ``benchmarks/results/conditional_probe.csv`` with the git commit of the
package that was imported (``--package-root`` names its checkout when it is not this one).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from alignment import append_rows, load_table  # noqa: E402  (benchmarks/ is not a package)
from sdgym_benchmark import git_commit, machine_description  # noqa: E402

DEFAULT_ROOT = HERE.parent.parent / 'shared' / 'datasets'
DEFAULT_RESULTS = HERE / 'results' / 'conditional_probe.csv'
CLASSIFICATION = ('adult', 'default', 'shoppers', 'magic')


def real_classifier(train, target, seed):
    """Encoder and P(class | other columns) model fit on the real training rows."""
    from tabgraa_sdv.metrics import TableEncoder, _boosting_classifier, _cat_mask

    features = [c for c in train.columns if c != target]
    encoder = TableEncoder().fit(train[features])
    model = _boosting_classifier(_cat_mask(encoder), seed).fit(
        encoder.ordinal(train[features]), train[target].astype(str).to_numpy())
    return encoder, features, model


def auc(scorer, rows, labels):
    """AUC of the real-data classifier on ``rows`` against ``labels`` (binary or one-vs-rest)."""
    encoder, features, model = scorer
    proba = model.predict_proba(encoder.ordinal(rows[features]))
    labels = np.asarray(labels).astype(str)
    if len(model.classes_) == 2:
        return float(roc_auc_score(labels == model.classes_[1], proba[:, 1]))
    return float(roc_auc_score(labels, proba, multi_class='ovr', labels=model.classes_))


def probe(root, name, seed, max_rows=None):
    from sdv.sampling import Condition

    from tabgraa_sdv import TabGRAASynthesizer
    from tabgraa_sdv.metrics import evaluate

    train, test, metadata, info = load_table(root, name)
    if max_rows:
        train = train.sample(min(max_rows, len(train)), random_state=0)
    target = info['target']
    scorer = real_classifier(train, target, seed)
    synthesizer = TabGRAASynthesizer(metadata, rounds=0, seed=seed)
    start = time.perf_counter()
    synthesizer.fit(train)
    fit_seconds = time.perf_counter() - start
    counts = test[target].value_counts()
    conditions = [Condition({target: value}, num_rows=int(n)) for value, n in counts.items()]
    conditional = synthesizer.sample_from_conditions(conditions)
    unconditional = synthesizer.sample(len(test))
    scores = evaluate(train, test, unconditional, metadata, seed=seed,
                      metrics=('quality_score', 'tree_detection_auc'))
    return {
        'dataset': name, 'seed': seed, 'train_rows': len(train),
        'conditional_auc': auc(scorer, conditional, conditional[target]),
        'unconditional_auc': auc(scorer, unconditional, unconditional[target]),
        'real_auc': auc(scorer, test, test[target]),
        'conditional_rows': len(conditional), **scores,
        'fit_seconds': round(fit_seconds, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--datasets', nargs='+', default=list(CLASSIFICATION),
                        choices=CLASSIFICATION)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--root', default=str(DEFAULT_ROOT), help='folder of the tables')
    parser.add_argument('--max-rows', type=int, default=None,
                        help='subsample the training rows (random_state 0)')
    parser.add_argument('--results', default=str(DEFAULT_RESULTS))
    parser.add_argument('--package-root', default=None,
                        help='checkout the imported tabgraa_sdv comes from (default: its parent)')
    args = parser.parse_args(argv)

    import tabgraa_sdv

    package_root = args.package_root or Path(tabgraa_sdv.__file__).resolve().parent.parent
    commit = git_commit(package_root)
    for name in args.datasets:
        for seed in args.seeds:
            row = probe(args.root, name, seed, args.max_rows)
            row.update({'code': commit, 'machine': machine_description(),
                        'timestamp': pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds')})
            append_rows(Path(args.results), [row])
            print(json.dumps(row), flush=True)


if __name__ == '__main__':
    main()
