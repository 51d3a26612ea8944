"""TabGRAA: generate -> score -> partition -> align, on the model's own samples only.

Each round draws a fresh pool of rows from the current policy, scores it with a reward (see
``rewards.py``), splits it by rank into a high group G+ and a low group G-, pairs them in rank
order, shuffles the pairs, cuts them into groups of ``group_size`` pairs, and takes one optimizer
step per group. With ``rho(x) = log pi_theta(x) - log pi_ref(x)`` (sums over the row's tokens):

    tabgraa   L = -log sigmoid(beta * (mean_{G+} rho - mean_{G-} rho))     mean inside the sigmoid
    dpo       L = mean_pairs -log sigmoid(beta * (rho(x+) - rho(x-)))
    kto       L = mean_{G+} [1 - sigmoid(beta (rho - z))] + mean_{G-} [1 - sigmoid(beta (z - rho))],
              z = max(0, mean rho) detached (the KL reference point)
    npo       L = mean_{G-} -(2 / beta) log sigmoid(-beta * rho)           low group only
    distill   L = -E_{x ~ pool, weighted by w(x)} log pi_theta(x),  w(x) = exp(r(x) / beta)

``distill`` is reward-weighted self-distillation: the policy's own pool, weighted by
``exp(r / beta)``, stands for samples of ``pi_ref * exp(r / beta)``, the optimum of
KL-regularised reward maximisation, and the policy is moved towards it by likelihood (the
gradient in its baseline-subtracted form, see ``Aligner._distill_round``). With the
``logodds`` reward, ``r`` estimates ``log p_data / p_model``, so at ``beta = 1`` that target is
the data distribution itself (the idea of discriminator rejection sampling, Azadi et al. 2019,
moved from sampling time into the weights).

The classifier of round t is trained against round t-1's pool, so from round 2 on it scores rows
of the updated policy with a ratio to the policy before the update. ``current_ratio=True``
(logodds only) adds ``log pi_prev(x) - log pi_theta(x)`` to make it ``log p_data / pi_theta``.

The reference pi_ref is the SFT model: the same weights with the LoRA adapters disabled (or a
frozen copy when ``adapter='full'``). When SFT itself trained LoRA adapters (a pretrained backbone
with ``lora=``), alignment keeps training those adapters and the reference is the same model with
the SFT adapter weights swapped back in, so the base weights are never copied. No real row enters these losses: the aligner is handed a
``Scorer`` that keeps the real rows' features to itself and only returns rewards and metrics.

Every round the policy is scored against real rows the reward classifier never saw (held-out
detection AUC); the best round (round 0 = SFT included) is kept, training stops after
``patience`` rounds without improvement, and a round whose pool lost diversity (distinct rows,
per-column entropy) is never kept.
"""

import copy
import math
import numbers
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from tqdm.auto import tqdm

from tabgraa_sdv import rewards as R
from tabgraa_sdv.devices import DataParallel

OBJECTIVES = ('tabgraa', 'dpo', 'kto', 'npo', 'sft_more', 'distill')
ADAPTERS = ('lora', 'full')
SELECTIONS = ('auc_se', 'paired', 'fidelity')


# ------------------------------------------------------------------------------------ losses
def tabgraa_loss(rho_high, rho_low, beta):
    """``[groups, B]`` each; group means inside the sigmoid (group-relative advantage)."""
    return -F.logsigmoid(beta * (rho_high.mean(-1) - rho_low.mean(-1))).mean()


def dpo_loss(rho_high, rho_low, beta):
    return -F.logsigmoid(beta * (rho_high - rho_low)).mean()


def kto_loss(rho_high, rho_low, beta):
    z = torch.cat([rho_high, rho_low]).mean().clamp(min=0).detach()
    desirable = 1 - torch.sigmoid(beta * (rho_high - z))
    undesirable = 1 - torch.sigmoid(beta * (z - rho_low))
    return desirable.mean() + undesirable.mean()


def npo_loss(rho_high, rho_low, beta):
    del rho_high  # NPO only pushes down the low group
    return (-(2.0 / beta) * F.logsigmoid(-beta * rho_low)).mean()


LOSSES = {'tabgraa': tabgraa_loss, 'dpo': dpo_loss, 'kto': kto_loss, 'npo': npo_loss}


def distill_weights(rewards, beta, clip_quantile=0.99):
    """Sampling weights ``exp(r / beta)`` (capped, see :func:`rewards.capped_weights`), summing
    to 1."""
    weights = R.capped_weights(np.asarray(rewards, dtype=np.float64) / beta, clip_quantile)
    return weights / weights.sum()


# ---------------------------------------------------------------------------------- partition
def partition(rewards, quantile, group_size, rng):
    """Indices ``[groups, B]`` of the high and low rows.

    Rows are ranked by reward; the top ``quantile`` share is G+, the bottom ``quantile`` share
    G-. The i-th best of G+ is paired with the i-th best of G-, the pairs are shuffled and cut
    into groups of ``group_size`` (a last, smaller group is dropped).
    """
    ranked = np.argsort(-np.asarray(rewards), kind='stable')
    n_side = int(len(ranked) * quantile)
    high, low = ranked[:n_side], ranked[len(ranked) - n_side:]
    shuffle = rng.permutation(n_side)
    n_groups = n_side // group_size
    if n_groups == 0:
        raise ValueError(
            f'pool_size * quantile ({n_side} rows per side) is smaller than group_size '
            f'({group_size}); raise pool_size or lower group_size.'
        )
    keep = shuffle[:n_groups * group_size]
    return high[keep].reshape(n_groups, group_size), low[keep].reshape(n_groups, group_size)


# ------------------------------------------------------------------------------------ scoring
class Scorer:
    """Holds the real rows' *features* (never their tokens) and scores synthetic token rows.

    ``real_tokens`` train the reward classifier; ``holdout_tokens`` (rows the classifier never
    sees) give the detection AUC used to pick the best round.
    """

    def __init__(self, codec, real_tokens, holdout_tokens, reward='logodds', seed=0,
                 user_reward=None, decode=None):
        self.features = R.TokenFeatures(codec)
        self.real_X = self.features.transform(real_tokens)
        self.holdout_X = self.features.transform(holdout_tokens)
        self.reward_name = reward if isinstance(reward, str) else 'callable'
        self.user_reward = user_reward
        self.decode = decode
        self._real_frame = decode(real_tokens) if user_reward is not None else None
        self.seed = seed
        self._onehot_real = None

    def reward(self, fresh_tokens, previous_tokens):
        """Rewards of the ``fresh_tokens`` rows. ``previous_tokens`` is the previous pool, or a
        list of pools: then one classifier per pool (each on its own subsample of the real
        rows) and their ``P(real|x)`` averaged, a steadier ranking than one classifier's on a
        model the classifiers can barely detect (``benchmarks/reward_noise_probe.py``)."""
        fresh_X = self.features.transform(fresh_tokens)
        if self.reward_name == 'callable':
            values = self.user_reward(self._real_frame, self.decode(fresh_tokens))
            return R.validate_reward_values(values, len(fresh_tokens))
        if self.reward_name == 'dcr':
            return R.dcr_reward(self.distance_to_real(fresh_X))
        if self.reward_name == 'histogram':
            return R.histogram_reward(self.real_X, fresh_X, self.features.categorical)
        if not isinstance(previous_tokens, (list, tuple)):
            previous_tokens = [previous_tokens]
        p_real = np.mean([
            R.two_sample_classifier(self.real_X, self.features.transform(previous),
                                    self.features.classifier_categorical, self.seed + i)
            .predict_proba(fresh_X)[:, 1]
            for i, previous in enumerate(previous_tokens)], axis=0)
        return {'classifier': R.classifier_reward, 'realism': R.realism_reward,
                'logodds': R.logodds_reward}[self.reward_name](p_real)

    def distance_to_real(self, X):
        if self._onehot_real is None:
            self._onehot_real = self.features.scaled_onehot(self.real_X, self.real_X)
        return R.distance_to_closest(self._onehot_real, self.features.scaled_onehot(X, self.real_X))

    def detection_auc(self, tokens):
        """Cross-validated AUC of a classifier separating the held-out real rows from
        ``tokens`` (all of both: the real rows are few, the synthetic ones cheap), as a
        :class:`Detection` (its Hanley-McNeil standard error and DeLong placements)."""
        X_syn = self.features.transform(tokens)
        X = np.concatenate([self.holdout_X, X_syn])
        y = np.concatenate([np.ones(len(self.holdout_X)), np.zeros(len(X_syn))])
        cat = self.features.classifier_categorical
        classifier = HistGradientBoostingClassifier(
            categorical_features=cat if cat.any() else None, max_iter=100,
            class_weight='balanced', random_state=self.seed)
        folds = StratifiedKFold(3, shuffle=True, random_state=self.seed)
        p = cross_val_predict(classifier, X, y, cv=folds, method='predict_proba')[:, 1]
        return Detection.from_scores(p[y == 1], p[y == 0])

    def holdout_fidelity(self, tokens):
        """One- and two-column histogram fidelity of ``tokens`` to the held-out real rows
        (:func:`rewards.binned_fidelity`'s score; 1 is identical histograms)."""
        return R.binned_fidelity(self.holdout_X, self.features.transform(tokens),
                                 self.features.categorical)[2]

    def dcr_share(self, tokens):
        """Share of rows closer to a training row than to a held-out row (0.5 is ideal)."""
        X = self.features.transform(tokens)
        n = min(len(self.holdout_X), len(self.real_X))
        rng = np.random.default_rng(self.seed)
        train = self.features.scaled_onehot(self.real_X[rng.choice(len(self.real_X), n, replace=False)], self.real_X)
        hold = self.features.scaled_onehot(self.holdout_X[:n], self.real_X)
        query = self.features.scaled_onehot(X, self.real_X)
        d_train = R.distance_to_closest(train, query)
        d_hold = R.distance_to_closest(hold, query)
        return float(np.mean(d_train < d_hold) + 0.5 * np.mean(d_train == d_hold))


def auc_standard_error(auc, n_positive, n_negative):
    """Hanley & McNeil (1982) standard error of an AUC."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (n_positive - 1) * (q1 - auc**2)
                + (n_negative - 1) * (q2 - auc**2)) / (n_positive * n_negative)
    return float(np.sqrt(max(variance, 0.0)))


class Detection:
    """A detection AUC (held-out real rows against a synthetic pool) with what it is made of.

    DeLong's placements: ``real_placements[i]`` is the share of synthetic rows scored below real
    row i (ties count half), ``synthetic_placements[j]`` the share of real rows scored above
    synthetic row j; the AUC is the mean of either. Every round scores the *same* held-out real
    rows, so two rounds' AUCs can be compared row by row (:func:`paired_auc_difference_se`),
    which removes the variance the two estimates share.
    """

    def __init__(self, auc, se, real_placements, synthetic_placements):
        self.auc, self.se = float(auc), float(se)
        self.real_placements = np.asarray(real_placements, dtype=float)
        self.synthetic_placements = np.asarray(synthetic_placements, dtype=float)

    @classmethod
    def from_scores(cls, p_real, p_synthetic):
        p_real, p_synthetic = np.asarray(p_real, float), np.asarray(p_synthetic, float)
        real_placements = _share_below(np.sort(p_synthetic), p_real)
        synthetic_placements = 1.0 - _share_below(np.sort(p_real), p_synthetic)
        auc = real_placements.mean()
        return cls(auc, auc_standard_error(auc, len(p_real), len(p_synthetic)),
                   real_placements, synthetic_placements)


def _share_below(sorted_values, x):
    """For each of ``x``, the share of ``sorted_values`` below it, ties counting half."""
    left = np.searchsorted(sorted_values, x, 'left')
    right = np.searchsorted(sorted_values, x, 'right')
    return (left + right) / (2 * len(sorted_values))


def paired_auc_difference_se(a, b):
    """DeLong standard error of ``a.auc - b.auc`` for two :class:`Detection` s of the same real
    rows against independent synthetic pools: paired over the real rows, unpaired over the
    synthetic ones,

        Var = Var_i(V_a,i - V_b,i) / n_real + Var_j(W_a,j) / m_a + Var_j(W_b,j) / m_b.

    The classifiers' own training noise is left out, as in any single-AUC standard error."""
    if len(a.real_placements) != len(b.real_placements):
        raise ValueError('A paired comparison needs the same held-out real rows in both.')
    n = len(a.real_placements)
    variance = (np.var(a.real_placements - b.real_placements, ddof=1) / n
                + np.var(a.synthetic_placements, ddof=1) / len(a.synthetic_placements)
                + np.var(b.synthetic_placements, ddof=1) / len(b.synthetic_placements))
    return float(np.sqrt(variance))


def diversity(tokens):
    """Share of distinct rows and mean per-column entropy (nats) of a token pool."""
    tokens = np.asarray(tokens)
    distinct = len(np.unique(tokens, axis=0)) / len(tokens)
    entropies = []
    for column in tokens.T:
        _, counts = np.unique(column, return_counts=True)
        p = counts / counts.sum()
        entropies.append(float(-(p * np.log(p)).sum()))
    return distinct, float(np.mean(entropies))


# ---------------------------------------------------------------------------------- the loop
MIN_ALIGNMENT_ROWS = 20


def align_after_sft(lm, tokens, train_index, val_index, alignment):
    """The alignment rounds ``fit`` runs after SFT, if ``alignment`` asks for any: skipped with a
    warning on tables too small to score synthetic rows against.

    In a multi-process launch every process runs the rounds on the same gathered pools, so they
    take the same decisions; process 0's model and history are then copied to all, so that any
    nondeterminism of GPU kernels cannot leave the processes apart."""
    if alignment is None or alignment.get('rounds', 0) <= 0:
        return
    if len(tokens) < MIN_ALIGNMENT_ROWS:
        warnings.warn(
            f'Only {len(tokens)} rows: too few to score synthetic rows against, so the '
            f'alignment rounds are skipped (SFT only). They need {MIN_ALIGNMENT_ROWS}.'
        )
        return
    lm.align(tokens[train_index], tokens[val_index], **alignment)
    parallel = DataParallel(lm.device)
    if parallel.active:
        parallel.broadcast_module(lm.model)
        lm.alignment_history = parallel.broadcast_object(lm.alignment_history)


def align_lm(lm, codec, train_tokens, holdout_tokens, reward='logodds', user_reward=None,
             record=False, **options):
    """Run TabGRAA rounds on a fitted language model ``lm``. ``codec`` is the columnar codec of
    its token rows (``train_tokens`` feed the reward classifier, ``holdout_tokens``, never seen
    by it, the detection AUC that picks the round to keep). Returns the :class:`Aligner`."""
    if len(holdout_tokens) == 0:  # tiny tables: hold out half of the rows from the scorer
        half = len(train_tokens) // 2
        train_tokens, holdout_tokens = train_tokens[:half], train_tokens[half:]
    if len(train_tokens) == 0 or len(holdout_tokens) == 0:
        raise ValueError('Alignment needs at least 2 training rows; use rounds=0.')
    scorer = Scorer(codec, train_tokens, holdout_tokens, reward=reward, seed=lm.seed,
                    user_reward=user_reward, decode=codec.decode)
    sft_tokens = (lambda: train_tokens) if options.get('objective') == 'sft_more' else None
    lm.set_random_state(lm.seed + 1)
    verbose = lm.verbose and DataParallel(lm.device).is_main  # one set of bars per launch
    aligner = Aligner(lm, scorer, seed=lm.seed, verbose=verbose, sft_tokens=sft_tokens,
                      **options)
    aligner.record = record
    lm.alignment_history = aligner.run()
    return aligner


def is_peft_model(model):
    return hasattr(model, 'peft_config') and hasattr(model, 'get_base_model')


class Aligner:
    """Runs the rounds on a fitted language model after its SFT.

    The model is reached through a small interface, which both :class:`tabgraa_sdv.model.TabularLM`
    and :class:`tabgraa_sdv.pretrained.TextLM` provide: ``model`` (replaced by the policy while
    the rounds run), ``sample_token_rows(n)`` (columnar token rows, the form pools and the scorer
    use), ``sequence_log_probs(rows, model, grad, batch_size)`` and
    ``alignment_lora_config(rank)``.

    Args:
        lm: the fitted language model (policy; its weights are adapted in place).
        scorer: a :class:`Scorer`.
        sft_tokens: callable returning real training tokens, only for ``objective='sft_more'``
            (supervised baseline); ``None`` otherwise, so the aligner cannot see real rows.
    """

    def __init__(self, lm, scorer, *, rounds, objective='tabgraa', pool_size=8192,
                 group_size=64, beta=1.0, learning_rate=1e-4, quantile=0.5, adapter='lora',
                 lora_rank=8, patience=2, seed=0, verbose=False, sft_tokens=None, anchor=0.0,
                 backtrack=None, current_ratio=False, selection='auc_se', scorers=1):
        self.lm, self.scorer = lm, scorer
        # scorers > 1: the reward averages that many classifiers, each against its own pool of
        # the previous policy (scorers - 1 more pools drawn each round), so the ranking carries
        # less of one classifier's fitting noise.
        if isinstance(scorers, bool) or not isinstance(scorers, numbers.Integral) or scorers < 1:
            raise ValueError(f'scorers must be a positive integer, got {scorers!r}.')
        if scorers > 1 and scorer.reward_name in ('dcr', 'histogram', 'callable'):
            raise ValueError(
                f'scorers={scorers} averages reward classifiers, and reward '
                f'{scorer.reward_name!r} has none; use scorers=1 or a classifier reward '
                "('logodds', 'classifier', 'realism').")
        self.scorers = scorers
        # selection: how much lower a round's held-out detection AUC must be to replace the
        # best round. 'auc_se': more than the round's own (Hanley-McNeil) standard error.
        # 'paired': more than the DeLong standard error of the *difference*, paired over the
        # held-out real rows both rounds are scored on, so the noise they share cancels.
        # 'fidelity': as 'auc_se', and the round's held-out histogram fidelity must not be below
        # the best round's: detection alone kept rounds that lost test quality.
        if selection not in SELECTIONS:
            raise ValueError(f'selection must be one of {SELECTIONS}, got {selection!r}.')
        self.selection = selection
        # current_ratio: the logodds classifier is trained against the *previous* pool, so from
        # round 2 on it estimates log p_data / pi_prev for rows drawn from pi_theta. Adding
        # log pi_prev(x) - log pi_theta(x) makes it the current policy's log p_data / pi_theta:
        # the importance weight distill's gradient assumes, and for the preference objectives a
        # ranking by what the policy still gets wrong, not by what an earlier one did.
        if current_ratio and scorer.reward_name != 'logodds':
            raise ValueError(
                f"current_ratio=True corrects a log density ratio, so it needs reward='logodds' "
                f"(got {scorer.reward_name!r}).")
        self.current_ratio = current_ratio
        # backtrack in (0, 1): a round that is not kept is undone (the best round's weights come
        # back, with fresh optimizer moments) and the learning rate is multiplied by it, so a
        # step size too large for the table's reward signal shrinks instead of compounding.
        self.backtrack = backtrack
        # anchor > 0 adds anchor * mean_{G+} -log pi_theta(x) (DPO + NLL, "RPO"): it keeps the
        # high group's likelihood up so the pairwise loss cannot win by pushing mass off both.
        self.anchor = anchor
        self.rounds, self.objective = rounds, objective
        self.pool_size, self.group_size, self.beta = pool_size, group_size, beta
        self.learning_rate, self.quantile, self.adapter = learning_rate, quantile, adapter
        self.lora_rank, self.patience, self.seed, self.verbose = lora_rank, patience, seed, verbose
        self.sft_tokens = sft_tokens
        self.history = []
        # With record=True: every pool drawn and every token batch the LM loss saw (the privacy
        # guard test checks that the second only ever holds rows of the first).
        self.record = False
        self.pools, self.loss_inputs = [], []
        self._reference_adapter = None

    # -- model plumbing
    def _wrap(self):
        model = self.lm.model
        self._reference_adapter = None
        if self.adapter == 'lora' and is_peft_model(model):
            # SFT trained adapters: train them on; the reference is their SFT weights.
            self.policy = model
            self.reference = None
            self._reference_adapter = self._trainable_state()
        elif self.adapter == 'lora':
            from peft import get_peft_model

            self.policy = get_peft_model(model, self.lm.alignment_lora_config(self.lora_rank))
            self.reference = None
        else:
            self.policy = model
            self.reference = copy.deepcopy(model).eval()
            for p in self.reference.parameters():
                p.requires_grad_(False)
        # get_peft_model returns a wrapper flagged as training; sampling restores that flag on
        # every submodule, which would turn dropout on for the reference's log-probs.
        self.policy.eval()
        self.lm.model = self.policy

    def _unwrap(self):
        if self.adapter == 'lora' and self._reference_adapter is None:
            self.lm.model = self.policy.merge_and_unload()
            # peft froze the base weights; give back a model as SFT left it (all trainable).
            for parameter in self.lm.model.parameters():
                parameter.requires_grad_(True)
        self.lm.model.eval()

    def _trainable_state(self):
        if self.adapter == 'full' and is_peft_model(self.policy):  # the adapters are what trains
            trainable = {n for n, p in self.policy.named_parameters() if p.requires_grad}
            return {k: v.detach().clone() for k, v in self.policy.state_dict().items()
                    if k in trainable}
        return {k: v.detach().clone() for k, v in self.policy.state_dict().items()
                if self.adapter == 'full' or 'lora_' in k}

    def _log_probs_at(self, state, tokens):
        """Log-probs of ``tokens`` under the policy with trainable weights ``state``; the current
        weights are put back afterwards."""
        current = self._trainable_state()
        self.policy.load_state_dict(state, strict=False)
        try:
            return self._log_probs(tokens, grad=False)
        finally:
            self.policy.load_state_dict(current, strict=False)

    def _reference_log_probs(self, tokens):
        if self._reference_adapter is not None:
            return self._log_probs_at(self._reference_adapter, tokens)
        if self.adapter == 'lora':
            with self.policy.disable_adapter():
                return self._log_probs(tokens, grad=False)
        return self._log_probs(tokens, grad=False, model=self.reference)

    def _log_probs(self, tokens, grad=True, model=None, batch_size=4096):
        model = self.policy if model is None else model
        if grad and self.record:
            self.loss_inputs.append(np.asarray(tokens).copy())
        return self.lm.sequence_log_probs(tokens, model=model, grad=grad, batch_size=batch_size)

    def _pool(self):
        pool = self.lm.sample_token_rows(self.pool_size)
        if self.record:
            self.pools.append(pool)
        return pool

    def _pools(self, n=None):
        return [self._pool() for _ in range(self.scorers if n is None else n)]

    # -- one round of alignment
    def _align_round(self, pool, rewards, optimizer, rng):
        high, low = partition(rewards, self.quantile, self.group_size, rng)
        reference = self._reference_log_probs(pool)
        loss_fn = LOSSES[self.objective]
        # The policy stays in eval mode (no dropout), as the reference was scored: with dropout
        # on one side only, rho would be noise even before the first update.
        self.policy.eval()
        losses = []
        for g in range(len(high)):
            rows = np.concatenate([high[g], low[g]])
            rho = self._log_probs(pool[rows]) - reference[torch.as_tensor(rows)]
            loss = loss_fn(rho[:self.group_size][None], rho[self.group_size:][None], self.beta)
            if self.anchor:
                high_log_prob = rho[:self.group_size] + reference[torch.as_tensor(high[g])]
                loss = loss - self.anchor * high_log_prob.mean()
            losses.append(self._step(optimizer, loss))
        self.policy.eval()
        return float(np.mean(losses)), len(high)

    def _step(self, optimizer, loss):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    def _sft_round(self, optimizer, n_steps, rng):
        """sft_more: the same number of optimizer steps of plain next-token training on real
        rows (2 * group_size rows a step), the supervised baseline with equal compute."""
        real = self.sft_tokens()
        self.policy.train()
        losses = []
        for _ in range(n_steps):
            rows = rng.choice(len(real), 2 * self.group_size, replace=False)
            loss = -self._log_probs(real[rows]).mean() / real.shape[1]
            losses.append(self._step(optimizer, loss))
        self.policy.eval()
        return float(np.mean(losses))

    def _distill_round(self, pool, rewards, optimizer, n_steps, rng):
        """distill: the same number of optimizer steps as the preference objectives, each on
        2 * group_size pool rows. The gradient of ``-E_w log pi`` is taken in its
        baseline-subtracted form ``-E_pool[(n w - 1) grad log pi]`` (``E_pi grad log pi = 0``):
        rows more likely under the target than under the model are pushed up, the others
        down, and fitting the pool's particular rows (which narrows the model) cancels out."""
        advantage = torch.as_tensor(distill_weights(rewards, self.beta) * len(pool) - 1.0,
                                    dtype=torch.float32)
        self.policy.train()
        losses = []
        for _ in range(n_steps):
            rows = rng.choice(len(pool), 2 * self.group_size, replace=False)
            log_probs = self._log_probs(pool[rows])
            loss = -(advantage[torch.as_tensor(rows)].to(log_probs.device) * log_probs).mean()
            losses.append(self._step(optimizer, loss / pool.shape[1]))
        self.policy.eval()
        return float(np.mean(losses))

    def _evaluate(self, round_, pool, extra, best=None):
        """The round's history row and its :class:`Detection` (``best``: the best round's,
        for the paired standard error of the difference)."""
        distinct, entropy = diversity(pool)
        detection = self.scorer.detection_auc(pool)
        row = {'round': round_, 'detection_auc': detection.auc, 'detection_auc_se': detection.se,
               'detection_auc_paired_se': (math.nan if best is None
                                           else paired_auc_difference_se(detection, best)),
               'holdout_fidelity': self.scorer.holdout_fidelity(pool),
               'dcr_share': self.scorer.dcr_share(pool), 'distinct_share': distinct,
               'mean_entropy': entropy, **extra}
        return row, detection

    def _improves(self, row, best):
        """Whether a round's detection AUC beats the best round's (``best``, its history row)
        by more than the noise of the comparison, so selection does not chase sampling noise
        away from the SFT model; with ``selection='fidelity'`` its held-out fidelity must also
        be no lower than the best round's."""
        margin = row['detection_auc_paired_se' if self.selection == 'paired' else
                     'detection_auc_se']
        if self.selection == 'fidelity' and row['holdout_fidelity'] < best['holdout_fidelity']:
            return False
        return row['detection_auc'] < best['detection_auc'] - margin

    def run(self):
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        self._wrap()
        trainable = [p for p in self.policy.parameters() if p.requires_grad]
        learning_rate = self.learning_rate
        optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.0)
        # round 0: the SFT model's pools, the first scorers' negatives
        previous = self._pools()
        base, best_detection = self._evaluate(0, previous[0], {})
        best = (base, 0, self._trainable_state())
        best_pools = previous
        # the weights each pool was drawn with (for current_ratio)
        previous_state = fresh_state = best[2]
        self.history = [{**base, 'loss': math.nan, 'reward_mean': math.nan,
                         'reward_high_mean': math.nan, 'reward_low_mean': math.nan,
                         'learning_rate': math.nan, 'kept': True}]
        fresh, companions = self._pool(), self._pools(self.scorers - 1)
        bar = tqdm(range(1, self.rounds + 1), desc='TabGRAA', unit='round', disable=not self.verbose)
        for round_ in bar:
            rewards = self.scorer.reward(fresh, previous)
            if self.current_ratio and previous_state is not fresh_state:
                correction = (self._log_probs_at(previous_state, fresh)
                              - self._log_probs(fresh, grad=False))
                rewards = rewards + correction.cpu().numpy()
            ranked = np.sort(rewards)[::-1]
            n_side = int(len(ranked) * self.quantile)
            if self.objective == 'sft_more':
                loss = self._sft_round(optimizer, n_side // self.group_size, rng)
            elif self.objective == 'distill':
                loss = self._distill_round(fresh, rewards, optimizer, n_side // self.group_size,
                                           rng)
            else:
                loss, _ = self._align_round(fresh, rewards, optimizer, rng)
            # the next pools come from the updated policy
            previous = [fresh, *companions]
            fresh, companions = self._pool(), self._pools(self.scorers - 1)
            if self.current_ratio:  # a copy of the trainable weights, so only when needed
                previous_state, fresh_state = fresh_state, self._trainable_state()
            row, detection = self._evaluate(round_, fresh, {
                'loss': loss, 'reward_mean': float(np.mean(rewards)),
                'reward_high_mean': float(ranked[:n_side].mean()),
                'reward_low_mean': float(ranked[len(ranked) - n_side:].mean()),
                'learning_rate': learning_rate}, best=best_detection)
            collapsed = (row['distinct_share'] < 0.8 * base['distinct_share']
                         or row['mean_entropy'] < 0.8 * base['mean_entropy'])
            row['kept'] = False
            if not collapsed and self._improves(row, best[0]):
                best = (row, round_, self._trainable_state())
                best_detection, best_pools = detection, [fresh, *companions]
                row['kept'] = True
            self.history.append(row)
            if self.backtrack and not row['kept'] and round_ < self.rounds:
                self.policy.load_state_dict(best[2], strict=False)
                learning_rate *= self.backtrack
                optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.0)
                previous = best_pools
                fresh, companions = self._pool(), self._pools(self.scorers - 1)
                previous_state = fresh_state = best[2]
            bar.set_postfix(auc=f"{row['detection_auc']:.3f}", best=best[1])
            if round_ - best[1] >= self.patience:
                break
        bar.close()
        self.policy.load_state_dict(best[2], strict=False)
        for row in self.history:
            row['kept'] = row['round'] == best[1]
        self._unwrap()
        return self.history
