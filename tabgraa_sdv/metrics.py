"""Fidelity, detection, utility and privacy metrics for synthetic tables (one module, shared by
the alignment benchmark, the SDGym harness and ``tabgraa evaluate``).

All metrics compare a synthetic table with the real *training* rows it was fit on and the real
*test* rows it never saw:

quality_score       SDMetrics quality report (column shapes, pair trends) vs the test rows.
quality_real_bins   the same report with each numeric x categorical pair scored on the *real*
                    column's bins (SDMetrics' ContingencySimilarity with continuous columns).
                    The report bins each table's numbers on that table's own range, so one
                    synthetic value past the real extremes shifts every synthetic bin edge; this
                    variant moves with the joint distribution, not with the extremes
                    (``benchmarks/quality_noise_probe.py``).
logistic_detection  SDMetrics LogisticDetection (1 is indistinguishable).
tree_detection_auc  3-fold cross-validated AUC of gradient boosting separating test rows from
                    synthetic rows (0.5 is ideal).
tstr_score          gradient boosting trained on synthetic rows, tested on the test rows: ROC AUC
                    (classification) or R^2 (regression) on the table's target.
dcr_share           share of synthetic rows closer to a training row than to a test row, with as
                    many training rows as test rows (0.5 is ideal; 1 means copies).
mia_auc             nearest-synthetic-neighbour membership attack: AUC of ``-distance`` separating
                    training rows (members) from test rows (0.5 is ideal).
alpha_precision,    Alaa et al. (ICML 2022), "How faithful is your synthetic data?": integrated
beta_recall         alpha-precision and beta-recall, with the real rows' mean as the centre of a
                    one-class ball in the scaled feature space (no learned embedding).
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import NearestNeighbors

METRICS = ('quality_score', 'quality_real_bins', 'logistic_detection', 'tree_detection_auc',
           'tstr_score', 'dcr_share', 'mia_auc', 'alpha_precision', 'beta_recall')
_CONTINUOUS = ('numerical', 'datetime')


class TableEncoder:
    """Numeric views of raw tables, fit on the real training rows.

    ``ordinal``: numbers as floats (missing kept as NaN), categories as integer codes (unseen
    and missing -> their own codes) for gradient boosting. ``scaled``: numbers min-max scaled with
    a missing indicator, categories one-hot, for distances.
    """

    def __init__(self, max_onehot=64):
        self.max_onehot = max_onehot

    def fit(self, data):
        self.columns = list(data.columns)
        self.numeric, self.categories, self.ranges = {}, {}, {}
        for column in self.columns:
            values = _as_number(data[column])
            if values is not None:
                self.numeric[column] = True
                lo, hi = np.nanmin(values, initial=np.inf), np.nanmax(values, initial=-np.inf)
                if not np.isfinite(lo):
                    lo, hi = 0.0, 1.0
                self.ranges[column] = (lo, max(hi - lo, 1e-12))
            else:
                counts = data[column].astype(str).value_counts()
                self.categories[column] = list(counts.index[:self.max_onehot])
        return self

    def ordinal(self, data):
        out = []
        for column in self.columns:
            if column in self.numeric:
                out.append(_as_number(data[column], force=True))
            else:
                codes = pd.Categorical(data[column].astype(str), categories=self.categories[column]).codes
                out.append(np.where(codes < 0, len(self.categories[column]), codes).astype(float))
        return np.column_stack(out)

    @property
    def categorical_mask(self):
        return np.array([column not in self.numeric for column in self.columns])

    def scaled(self, data):
        parts = []
        for column in self.columns:
            if column in self.numeric:
                lo, span = self.ranges[column]
                x = (_as_number(data[column], force=True) - lo) / span
                missing = np.isnan(x)
                parts += [np.nan_to_num(x, nan=0.0)[:, None], missing[:, None].astype(float)]
            else:
                categories = self.categories[column]
                codes = pd.Categorical(data[column].astype(str), categories=categories).codes
                onehot = np.zeros((len(data), len(categories) + 1))
                onehot[np.arange(len(data)), np.where(codes < 0, len(categories), codes)] = 1
                parts.append(onehot)
        return np.concatenate(parts, axis=1).astype(np.float32)


def _as_number(series, force=False):
    if pd.api.types.is_bool_dtype(series.dtype):
        return None if not force else series.astype(float).to_numpy()
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        out = series.to_numpy('datetime64[ns]').astype(np.int64).astype(float)
        out[series.isna().to_numpy()] = np.nan
        return out / 1e9
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    if force:
        return pd.to_numeric(series, errors='coerce').to_numpy(dtype=float)
    return None


def _boosting_classifier(categorical, seed):
    return HistGradientBoostingClassifier(
        categorical_features=categorical if categorical.any() else None, max_iter=200,
        random_state=seed)


def tree_detection_auc(encoder, real, synthetic, seed=0):
    n = min(len(real), len(synthetic))
    real = real.sample(n, random_state=seed)
    synthetic = synthetic.sample(n, random_state=seed)
    X = np.concatenate([encoder.ordinal(real), encoder.ordinal(synthetic)])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    folds = StratifiedKFold(3, shuffle=True, random_state=seed)
    p = cross_val_predict(_boosting_classifier(_cat_mask(encoder), seed), X, y, cv=folds,
                          method='predict_proba')[:, 1]
    return float(roc_auc_score(y, p))


def _cat_mask(encoder):
    # Native categorical splits need < 255 codes (the missing/unseen code included).
    return np.array([c not in encoder.numeric and len(encoder.categories[c]) < 254
                     for c in encoder.columns])


def tstr_score(real_test, synthetic, target, task, seed=0):
    features = [c for c in real_test.columns if c != target]
    encoder = TableEncoder().fit(pd.concat([synthetic[features], real_test[features]]))
    X_train, X_test = encoder.ordinal(synthetic[features]), encoder.ordinal(real_test[features])
    if task == 'regression':
        y_train = pd.to_numeric(synthetic[target], errors='coerce').to_numpy(float)
        keep = np.isfinite(y_train)
        model = HistGradientBoostingRegressor(
            categorical_features=_cat_mask(encoder) if _cat_mask(encoder).any() else None,
            random_state=seed).fit(X_train[keep], y_train[keep])
        return float(r2_score(real_test[target].to_numpy(float), model.predict(X_test)))
    y_train = synthetic[target].astype(str).to_numpy()
    y_test = real_test[target].astype(str).to_numpy()
    classes = np.unique(y_train)
    if len(classes) < 2:
        return 0.5  # a synthetic table with one class carries no signal
    model = _boosting_classifier(_cat_mask(encoder), seed).fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    if len(model.classes_) == 2:
        return float(roc_auc_score(y_test == model.classes_[1], proba[:, 1]))
    return float(roc_auc_score(y_test, proba, multi_class='ovr', labels=model.classes_))


def _nearest(reference, query):
    return NearestNeighbors(n_neighbors=1, metric='manhattan').fit(reference).kneighbors(query)[0][:, 0]


def dcr_share(encoder, real_train, real_test, synthetic, seed=0):
    n = min(len(real_train), len(real_test))
    train = encoder.scaled(real_train.sample(n, random_state=seed))
    test = encoder.scaled(real_test.sample(n, random_state=seed))
    query = encoder.scaled(synthetic)
    d_train, d_test = _nearest(train, query), _nearest(test, query)
    return float(np.mean(d_train < d_test) + 0.5 * np.mean(d_train == d_test))


def mia_auc(encoder, real_train, real_test, synthetic, seed=0):
    n = min(len(real_train), len(real_test))
    members = encoder.scaled(real_train.sample(n, random_state=seed))
    others = encoder.scaled(real_test.sample(n, random_state=seed))
    synth = encoder.scaled(synthetic)
    distance = np.concatenate([_nearest(synth, members), _nearest(synth, others)])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    return float(roc_auc_score(y, -distance))


def alpha_precision_beta_recall(encoder, real, synthetic, n_levels=30):
    """Integrated alpha-precision and beta-recall (Alaa et al., 2022), each in [0, 1], 1 best.

    alpha-precision: for each level a, the share of synthetic rows inside the ball around the real
    centre that holds a share a of the real rows; a faithful generator gives a at every level.
    beta-recall: for each level b, the share of real rows whose nearest synthetic row is closer
    than their nearest other real row and lies in the synthetic rows' own b-support ball.
    Each curve is summarised as 1 - mean |curve - level| / mean(level).
    """
    X, Y = encoder.scaled(real), encoder.scaled(synthetic)
    levels = np.linspace(0, 1, n_levels + 1)[1:]
    centre = X.mean(axis=0)
    real_radius = np.quantile(np.linalg.norm(X - centre, axis=1), levels)
    synth_to_centre = np.linalg.norm(Y - centre, axis=1)
    precision = np.array([np.mean(synth_to_centre <= r) for r in real_radius])

    real_nn = NearestNeighbors(n_neighbors=2).fit(X).kneighbors(X)[0][:, 1]
    synth_nn_dist, synth_nn_idx = NearestNeighbors(n_neighbors=1).fit(Y).kneighbors(X)
    synth_centre = Y.mean(axis=0)
    closest_to_centre = np.linalg.norm(Y[synth_nn_idx[:, 0]] - synth_centre, axis=1)
    synth_radius = np.quantile(closest_to_centre, levels)
    covered = synth_nn_dist[:, 0] <= real_nn
    recall = np.array([np.mean(covered & (closest_to_centre <= r)) for r in synth_radius])

    def summary(curve):
        return float(1 - np.abs(curve - levels).sum() / levels.sum())

    return summary(precision), summary(recall)


def evaluate(real_train, real_test, synthetic, metadata=None, target=None, task=None,
             max_rows=5000, seed=0, metrics=METRICS):
    """Every metric in ``metrics`` for one synthetic table. Distance-based metrics use at most
    ``max_rows`` rows of each table (nearest neighbours grow with the product of the sizes)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # SDMetrics' logistic regression convergence chatter
        return _evaluate(real_train, real_test, synthetic[list(real_train.columns)], metadata,
                         target, task, max_rows, seed, metrics)


def _evaluate(real_train, real_test, synthetic, metadata, target, task, max_rows, seed, metrics):

    def cap(frame):
        return frame.sample(max_rows, random_state=seed) if len(frame) > max_rows else frame

    train_s, test_s, synth_s = cap(real_train), cap(real_test), cap(synthetic)
    encoder = TableEncoder().fit(real_train)
    out = {}
    if {'quality_score', 'quality_real_bins', 'logistic_detection'} & set(metrics):
        if metadata is None:
            from sdv.metadata import Metadata

            metadata = Metadata.detect_from_dataframe(real_train)
    if 'quality_score' in metrics or 'quality_real_bins' in metrics:
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        report.generate(real_test, synthetic, _metadata_dict(metadata), verbose=False)
        if 'quality_score' in metrics:
            out['quality_score'] = float(report.get_score())
        if 'quality_real_bins' in metrics:
            out['quality_real_bins'] = quality_real_bins(report, real_test, synthetic,
                                                         _metadata_dict(metadata))
    if 'logistic_detection' in metrics:
        from sdmetrics.single_table import LogisticDetection

        # SDMetrics shuffles its folds (and RDT its categorical encoding) with numpy's global
        # generator: seed it for this call only, so the metric is reproducible and the
        # caller's stream is left as it was.
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            out['logistic_detection'] = float(LogisticDetection.compute(
                real_test, _unseen_categories_to_mode(synth_s, real_test, encoder),
                _metadata_dict(metadata)))
        finally:
            np.random.set_state(state)
    if 'tree_detection_auc' in metrics:
        out['tree_detection_auc'] = tree_detection_auc(encoder, real_test, synthetic, seed)
    if 'tstr_score' in metrics and target is not None:
        out['tstr_score'] = tstr_score(real_test, synthetic, target, task, seed)
    if 'dcr_share' in metrics:
        out['dcr_share'] = dcr_share(encoder, train_s, test_s, synth_s, seed)
    if 'mia_auc' in metrics:
        out['mia_auc'] = mia_auc(encoder, train_s, test_s, synth_s, seed)
    if 'alpha_precision' in metrics or 'beta_recall' in metrics:
        a, b = alpha_precision_beta_recall(encoder, train_s, synth_s)
        out['alpha_precision'], out['beta_recall'] = a, b
    return out


def quality_real_bins(report, real, synthetic, metadata):
    """A generated SDMetrics ``QualityReport``'s score, with every numeric x categorical pair
    of Column Pair Trends rescored by ``ContingencySimilarity`` on the real column's bins.
    Only pairs the report scored are rescored (a pair below its real-association threshold
    stays out), and on every row: the report subsamples a pair only past 50,000 rows."""
    from sdmetrics.column_pairs import ContingencySimilarity

    shapes = report.get_details('Column Shapes')['Score']
    pairs = report.get_details('Column Pair Trends').copy()
    columns = metadata['columns']
    for i, row in pairs.iterrows():
        names = [row['Column 1'], row['Column 2']]
        continuous = [n for n in names if columns[n]['sdtype'] in _CONTINUOUS]
        if row['Metric'] == 'ContingencySimilarity' and continuous and np.isfinite(row['Score']):
            pairs.loc[i, 'Score'] = ContingencySimilarity.compute(
                _as_numbers(real[names], continuous, columns),
                _as_numbers(synthetic[names], continuous, columns),
                continuous_column_names=continuous)
    return float(np.nanmean([shapes.mean(), pairs['Score'].mean()]))


def _as_numbers(frame, continuous, columns):
    """Datetime columns as nanoseconds (missing: NaN), so they can be binned like numbers."""
    frame = frame.copy()
    for name in continuous:
        if columns[name]['sdtype'] == 'datetime':
            when = pd.to_datetime(frame[name], format=columns[name].get('datetime_format'),
                                  errors='coerce')
            frame[name] = when.astype('int64').where(when.notna(), np.nan).astype(float)
    return frame


def _unseen_categories_to_mode(synthetic, real, encoder):
    # SDMetrics' detection fits its one-hot encoder on the real rows and fails on a category (or a
    # missing value) the real rows lack; such values are replaced by the real rows' most frequent
    # one, which can only flatter the synthetic rows on this one metric (documented).
    synthetic = synthetic.copy()
    for column in encoder.categories:
        real_values = real[column]
        unseen = ~synthetic[column].isin(set(real_values.dropna().unique()))
        if real_values.isna().any():
            unseen &= synthetic[column].notna()
        if unseen.any():
            synthetic[column] = synthetic[column].where(~unseen, real_values.mode().iloc[0])
    return synthetic


def train_on_real_score(real_train, real_test, target, task, seed=0):
    """The TSTR ceiling: the same model trained on the real training rows."""
    return tstr_score(real_test, real_train, target, task, seed)


def _metadata_dict(metadata):
    """SDMetrics takes single-table metadata as a dict."""
    if isinstance(metadata, dict):
        return metadata
    table = metadata._convert_to_single_table() if hasattr(metadata, '_convert_to_single_table') \
        else metadata
    return table.to_dict()
