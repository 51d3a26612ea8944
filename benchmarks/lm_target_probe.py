"""How well does the fitted language model itself know the target? Its AUC as a classifier.

    python benchmarks/lm_target_probe.py magic --seeds 0 1 2 --code-revision 2

For a classification table whose target is a column of the model, ``p(y | other columns)`` is
the model's sequence likelihood with each class put in the target column, normalised over the
classes (``TabularLM.log_prob``). Its ROC AUC on the real test rows is an upper guide to what a
classifier trained on the model's samples can learn about the target (TSTR): the samples carry
the model's own ``p(y | x)``. Test values outside the training range are clipped to it, and
test rows with a value the codec cannot write (an unseen category) are left out.
Models: the cached SFT synthesizers of ``benchmarks/alignment.py`` (``sft_synthesizer``, the
anneal, no alignment). Rows are appended to ``benchmarks/results/lm_target_probe.csv``.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from alignment import append_rows, load_table, probe_parser, sft_synthesizer
from sdgym_benchmark import machine_description

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'lm_target_probe.csv'


def encodable_test_rows(synthesizer, train, test, target):
    """The test rows the codec can write: numbers clipped to the training range, then rows with
    a value the codec cannot hold (an unseen category, a value a column of few distinct values
    never took) left out."""
    test = test.copy()
    for column in test.columns.drop(target):
        if pd.api.types.is_numeric_dtype(train[column]):
            test[column] = test[column].clip(train[column].min(), train[column].max())
    processed = synthesizer._data_processor.transform(test)
    keep = np.ones(len(test), bool)
    for column in synthesizer._model.codec.columns:
        values = processed[column.name]
        writable = {value: _writable(column, pd.Series([value], dtype=values.dtype))
                    for value in values.dropna().drop_duplicates()}
        missing_ok = _writable(column, values[values.isna()].head(1))
        keep &= np.where(values.isna(), missing_ok, values.map(writable)).astype(bool)
    return test[keep]


def _writable(column, series):
    try:
        column.encode(series)
        return True
    except ValueError:
        return False


def target_auc(synthesizer, train, test, target):
    """ROC AUC (one-vs-rest for several classes) of the model's ``p(target | other columns)``."""
    classes = sorted(train[target].unique())
    log_probs = np.stack([
        synthesizer._model.log_prob(synthesizer._data_processor.transform(
            test.assign(**{target: value}))) for value in classes], axis=1)
    posterior = np.exp(log_probs - log_probs.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    if len(classes) == 2:
        return float(roc_auc_score(test[target] == classes[1], posterior[:, 1]))
    return float(roc_auc_score(test[target], posterior, multi_class='ovr', labels=classes))


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS)
    parser.add_argument('--code-revision', type=int, required=True,
                        help='code revision of the cached SFT models to read')
    args = parser.parse_args(argv)
    for name in args.datasets:
        train, test, _, info = load_table(args.root, name)
        if info['task'] == 'regression':
            raise SystemExit(f'{name}: a regression target; this probe needs classes')
        for seed in args.seeds:
            synthesizer, _ = sft_synthesizer(args.root, name, seed, anneal_epochs=3,
                                             code_revision=args.code_revision)
            usable = encodable_test_rows(synthesizer, train, test, info['target'])
            row = {'dataset': name, 'seed': seed, 'code_revision': args.code_revision,
                   'test_rows': len(usable), 'lm_target_auc': target_auc(
                       synthesizer, train, usable, info['target']),
                   'machine': machine_description()}
            append_rows(args.results, [row])
            print(f"{name} seed {seed}: model's p(target | other columns) AUC "
                  f"{row['lm_target_auc']:.4f} on {len(usable)} test rows", flush=True)


if __name__ == '__main__':
    main()
