"""Seeded tests of ThompsonPolicy on hand-built snapshots (no store)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import replace

import pytest

from policies.base import (
    ALL_PROMPTS,
    POOLED,
    PRIOR_FLOOR,
    RECENT,
    SQUARES,
    Beta,
    DecisionRequest,
    Delta,
    Evidence,
    Table,
)
from policies.propensity import win_probabilities
from policies.thompson import ThompsonPolicy

MODELS = ("a", "b", "c")


def _request(agent: str = "bot", context: str = "chat") -> DecisionRequest:
    return DecisionRequest(agent, context, MODELS)


Cells = dict[Table, dict[str, tuple[float, float]]]


def _snapshot(cells: Cells) -> dict[Table, dict[str, Evidence]]:
    return {t: {m: Evidence(s, f) for m, (s, f) in row.items()} for t, row in cells.items()}


class Learner:
    """Applies deltas to an in-process snapshot, the way a store would (no decay)."""

    def __init__(self) -> None:
        self.cells: dict[Table, dict[str, Evidence]] = defaultdict(dict)

    def apply(self, deltas: tuple[Delta, ...]) -> None:
        for d in deltas:
            old = self.cells[d.table].get(d.model, Evidence())
            self.cells[d.table][d.model] = Evidence(
                old.successes + d.successes, old.failures + d.failures
            )


def _run(policy: ThompsonPolicy, request: DecisionRequest, rates: dict[str, float], *,
         steps: int, learner: Learner, rng: random.Random) -> Counter[str]:
    picks: Counter[str] = Counter()
    for _ in range(steps):
        choice = policy.rank(request, learner.cells, rng).choice
        picks[choice] += 1
        reward = 1.0 if rng.random() < rates[choice] else 0.0
        learner.apply(policy.deltas(request, choice, reward))
    return picks


def test_exact_picks_for_a_seed() -> None:
    policy = ThompsonPolicy(evidence_scale=2.0, min_tries=0)
    snap = _snapshot({Table("bot"): {"a": (1, 1), "b": (2, 1), "c": (0, 1)}})
    rng = random.Random(8)
    picks = [policy.rank(_request(context=ALL_PROMPTS), snap, rng).choice for _ in range(8)]
    assert picks == ["a", "a", "b", "a", "b", "b", "c", "a"]


def test_same_seed_same_ranking() -> None:
    policy = ThompsonPolicy(exploration_rate=0.3)
    first = [policy.rank(_request(), {}, random.Random(3)) for _ in range(3)]
    assert len(set(first)) == 1


def test_converges_to_the_better_arm() -> None:
    policy = ThompsonPolicy()
    picks = _run(policy, _request(), {"a": 0.3, "b": 0.7, "c": 0.5}, steps=600, learner=Learner(),
                 rng=random.Random(1))
    assert picks["b"] > 0.7 * 600


def test_fallbacks_follow_posterior_mean() -> None:
    snap = _snapshot({Table("bot"): {"a": (1, 9), "b": (90, 10), "c": (50, 50)}})
    ranking = ThompsonPolicy().rank(_request(), snap, random.Random(0)).ranking
    assert ranking == ("b", "c", "a")


def test_exploration_mix_explores_at_the_rate() -> None:
    snap = _snapshot({Table("bot"): {"a": (1, 900), "b": (900, 1), "c": (1, 900)}})
    policy = ThompsonPolicy(exploration_rate=0.3, use_context=False)
    rng = random.Random(5)
    decisions = [policy.rank(_request(), snap, rng) for _ in range(4000)]
    explored = sum(d.explored for d in decisions) / 4000
    not_b = sum(d.choice != "b" for d in decisions) / 4000
    assert explored == pytest.approx(0.3, abs=0.03)
    assert not_b == pytest.approx(0.2, abs=0.03)  # 2/3 of explored picks miss "b"
    assert all(d.choice == "b" for d in decisions if not d.explored)


def test_propensities_sum_to_one_and_match_frequencies() -> None:
    snap = _snapshot({Table("bot"): {"a": (3, 3), "b": (4, 2), "c": (2, 4)}})
    policy = ThompsonPolicy(exploration_rate=0.1, propensity_draws=4000)
    props = policy.propensities(_request(), snap, random.Random(2))
    assert sum(props.values()) == pytest.approx(1.0)
    rng = random.Random(9)
    counts = Counter(policy.rank(_request(), snap, rng).choice for _ in range(4000))
    for model in MODELS:
        assert props[model] == pytest.approx(counts[model] / 4000, abs=0.03)
    assert policy.propensity(_request(), snap, "zzz", random.Random(2)) == 0.0


def test_propensity_from_the_decision_matches_the_snapshot_and_reads_only_its_basis() -> None:
    snap = _snapshot({Table("bot"): {"a": (3, 3), "b": (4, 2), "c": (2, 4)}})
    policy = ThompsonPolicy(exploration_rate=0.1, use_context=False)
    decision = policy.rank(_request(), snap, random.Random(4))
    assert decision.basis is not None and decision.basis.forced == ()
    for model in MODELS:
        assert policy.propensity(_request(), snap, model, random.Random(2), decision) == pytest.approx(
            policy.propensity(_request(), snap, model, random.Random(2)), abs=1e-12
        )
    forced = replace(decision, basis=decision.basis._replace(forced=(2,)))
    assert policy.propensity(_request(), snap, "c", random.Random(2), forced) == pytest.approx(0.9 + 0.1 / 3)
    assert policy.propensity(_request(), snap, "a", random.Random(2), forced) == pytest.approx(0.1 / 3)


def test_a_forced_try_decision_carries_the_forced_candidates() -> None:
    snap = _snapshot({Table("bot"): {"a": (30, 30), "b": (40, 20)}})
    policy = ThompsonPolicy(use_context=False, pool_strength=0.0)
    decision = policy.rank(_request(), snap, random.Random(1))
    assert decision.basis is not None and decision.basis.forced == (2,)
    assert decision.choice == "c" and decision.explored


def test_propensity_includes_the_exploration_floor() -> None:
    snap = _snapshot({Table("bot"): {"a": (1, 900), "b": (900, 1), "c": (1, 900)}})
    policy = ThompsonPolicy(exploration_rate=0.3, use_context=False)
    assert policy.propensity(_request(), snap, "a", random.Random(1)) == pytest.approx(0.1)


def test_tables_and_deltas_cover_every_level() -> None:
    policy = ThompsonPolicy()
    tables = (Table(POOLED), Table("bot"), Table("bot", "chat"))
    detector = (Table("bot", f"{RECENT}:chat"), Table("bot", f"{SQUARES}:chat"),
                Table("bot", "~probes:chat"))
    assert policy.tables(_request()) == (*detector, *tables)
    assert policy.posterior_tables(_request()) == tables
    deltas = policy.deltas(_request(), "a", 0.25)
    assert deltas == tuple(Delta(t, "a", 0.25, 0.75) for t in tables)
    assert policy.deltas(_request(), "a", 7.0)[0].failures == 0.0
    plain = ThompsonPolicy(pool_strength=0.0, use_context=False)
    assert plain.posterior_tables(_request()) == (Table("bot"),)
    assert policy.posterior_tables(_request(context=ALL_PROMPTS)) == tables[:2]


def test_pooled_evidence_is_capped_to_the_pool_strength() -> None:
    snap = _snapshot({Table(POOLED): {"a": (900, 100)}})
    policy = ThompsonPolicy(pool_strength=4.0, use_context=False, evidence_scale=1.0)
    post = policy.posteriors(_request(), snap)[0]
    assert post == Beta(1.0 + 3.6, 1.0 + 0.4)


def test_context_backs_off_to_the_agents_other_contexts() -> None:
    # the agent table holds the cell's evidence too: only the other 80 + 18 back it off
    snap = _snapshot({Table("bot"): {"a": (80, 20)}, Table("bot", "chat"): {"a": (0, 2)}})
    policy = ThompsonPolicy(pool_strength=0.0, context_strength=9.8, evidence_scale=1.0)
    assert policy.posteriors(_request(), snap)[0] == pytest.approx(Beta(1 + 8, 1 + 1.8 + 2))


def test_pooled_evidence_excludes_the_agents_own() -> None:
    snap = _snapshot({Table(POOLED): {"a": (10, 10)}, Table("bot"): {"a": (10, 10)}})
    policy = ThompsonPolicy(use_context=False, evidence_scale=2.0)
    assert policy.posteriors(_request(), snap)[0] == Beta(21.0, 21.0)


def test_evidence_scale_sharpens_the_posterior() -> None:
    snap = _snapshot({Table("bot"): {"a": (3, 1)}})
    policy = ThompsonPolicy(pool_strength=0.0, use_context=False, evidence_scale=2.0)
    assert policy.posteriors(_request(), snap)[0] == Beta(7.0, 3.0)


def test_priors_are_per_model() -> None:
    policy = ThompsonPolicy(priors={"b": Beta(9.0, 1.0)})
    posts = policy.posteriors(_request(), {})
    assert posts[0] == Beta(1.0, 1.0)
    assert posts[1] == Beta(9.0, 1.0)


def test_pooled_prior_helps_a_new_agent() -> None:
    rates = {"a": 0.2, "b": 0.8, "c": 0.5}
    pooled, plain = Learner(), Learner()
    teacher = ThompsonPolicy(use_context=False)
    _run(teacher, _request("old"), rates, steps=400, learner=pooled, rng=random.Random(4))
    new = _request("new")
    with_pool = sum(
        ThompsonPolicy(use_context=False).rank(new, pooled.cells, random.Random(s)).choice == "b"
        for s in range(300)
    )
    without = sum(
        ThompsonPolicy(use_context=False).rank(new, plain.cells, random.Random(s)).choice == "b"
        for s in range(300)
    )
    assert with_pool > 0.6 * 300 > without


def test_untried_models_are_tried_first_uniformly() -> None:
    snap = _snapshot({Table("bot"): {"a": (400, 1), "b": (1, 1)}})
    policy = ThompsonPolicy(use_context=False, pool_strength=0.0, min_tries=5)
    picks = Counter(policy.rank(_request(), snap, random.Random(s)).choice for s in range(400))
    assert set(picks) == {"b", "c"} and min(picks.values()) > 150
    assert policy.propensities(_request(), snap, random.Random(0)) == {"a": 0.0, "b": 0.5, "c": 0.5}
    mixed = ThompsonPolicy(use_context=False, pool_strength=0.0, min_tries=5, exploration_rate=0.3)
    assert mixed.propensities(_request(), snap, random.Random(0)) == pytest.approx(
        {"a": 0.1, "b": 0.1 + 0.35, "c": 0.1 + 0.35}
    )


def test_tries_by_other_agents_count_so_the_pool_still_steers() -> None:
    pooled = {"a": (5, 20), "b": (20, 5), "c": (5, 20)}
    snap = _snapshot({Table(POOLED): pooled})
    policy = ThompsonPolicy(use_context=False, min_tries=5)
    assert policy.undertried(_request("new"), snap) == ()
    own = _snapshot({Table(POOLED): pooled, Table("new"): pooled})
    assert policy.undertried(_request("new"), own) == ()
    assert policy.undertried(_request("new"), _snapshot({Table(POOLED): {"b": (2, 1)}})) == (0, 1, 2)


def test_a_configured_prior_counts_as_tries() -> None:
    policy = ThompsonPolicy(min_tries=5, priors={"a": Beta(5.0, 2.0), "b": Beta(2.0, 2.0)})
    assert policy.undertried(_request(), {}) == (1, 2)


def test_min_tries_makes_lock_outs_rarer() -> None:
    # a sharp posterior can lock the best arm out after a few unlucky first answers
    request = DecisionRequest("bot", ALL_PROMPTS, MODELS)
    rates = {"a": 0.6, "b": 0.8, "c": 0.7}

    def lock_outs(min_tries: float) -> int:
        count = 0
        for seed in range(200):
            policy = ThompsonPolicy(use_context=False, pool_strength=0.0, min_tries=min_tries)
            learner, rng = Learner(), random.Random(seed)
            _run(policy, request, rates, steps=150, learner=learner, rng=rng)
            late = _run(policy, request, rates, steps=100, learner=learner, rng=rng)
            count += late["b"] < 50
        return count

    assert lock_outs(5.0) < 0.8 * lock_outs(0.0)


def test_context_separates_prompt_kinds_with_opposite_best_models() -> None:
    learner, rng = Learner(), random.Random(11)
    rates = {"code": {"a": 0.9, "b": 0.2, "c": 0.4}, "choice": {"a": 0.2, "b": 0.9, "c": 0.4}}
    policy = ThompsonPolicy()
    picks: dict[str, Counter[str]] = {"code": Counter(), "choice": Counter()}
    for step in range(1200):
        context = "code" if step % 2 else "choice"
        request = _request("one", context)
        choice = policy.rank(request, learner.cells, rng).choice
        picks[context][choice] += 1 if step >= 600 else 0
        reward = 1.0 if rng.random() < rates[context][choice] else 0.0
        learner.apply(policy.deltas(request, choice, reward))
    assert picks["code"]["a"] > 0.8 * 300
    assert picks["choice"]["b"] > 0.8 * 300


@pytest.mark.parametrize(
    "options",
    [{"exploration_rate": -0.1}, {"exploration_rate": 1.5}, {"pool_strength": -1.0},
     {"context_strength": -1.0}, {"propensity_draws": 0}, {"evidence_scale": 0.0},
     {"min_tries": -1.0}],
)
def test_bad_options_raise(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        ThompsonPolicy(**options)  # type: ignore[arg-type]


def test_corrupt_prior_is_floored() -> None:
    policy = ThompsonPolicy(priors={"a": Beta(0.0, -3.0)}, pool_strength=0.0)
    post = policy.posteriors(_request(), {})[0]
    assert (post.alpha, post.beta) == (PRIOR_FLOOR, PRIOR_FLOOR)
    assert policy.rank(_request(), {}, random.Random(0)).choice in MODELS


@pytest.mark.parametrize(
    ("alphas", "betas"),
    [((3, 4, 2), (3, 2, 4)), ((1, 1), (1, 1)), ((800, 30, 1), (200, 10, 1)),
     ((9000, 8950, 50), (1000, 1050, 10)), ((3, 1801, 3), (1801, 3, 1801))],
)
def test_win_probabilities_match_many_draws(alphas: tuple[float, ...], betas: tuple[float, ...]) -> None:
    exact = win_probabilities(alphas, betas)
    assert exact is not None and sum(exact) == pytest.approx(1.0)
    rng, draws = random.Random(4), 40_000
    wins = Counter(
        max(range(len(alphas)), key=lambda i: rng.betavariate(alphas[i], betas[i])) for _ in range(draws)
    )
    for i, p in enumerate(exact):
        assert p == pytest.approx(wins[i] / draws, abs=0.008)


def test_propensities_fall_back_to_draws_for_densities_unbounded_at_an_edge() -> None:
    assert win_probabilities((0.5, 2.0), (1.0, 1.0)) is None
    policy = ThompsonPolicy(priors={"a": Beta(0.5, 0.5)}, pool_strength=0.0, propensity_draws=2000)
    props = policy.propensities(_request(), {}, random.Random(3))
    assert sum(props.values()) == pytest.approx(1.0)
    assert all(0.2 < p < 0.5 for p in props.values())


def test_posterior_maps_each_candidate_to_the_sampled_beta() -> None:
    policy = ThompsonPolicy(evidence_scale=2.0, pool_strength=0.0, use_context=False)
    snapshot = {Table("bot"): {"a": Evidence(3.0, 1.0)}}
    posterior = policy.posterior(_request(), snapshot)
    assert posterior == dict(zip(MODELS, policy.posteriors(_request(), snapshot), strict=True))
    assert posterior["a"] == Beta(7.0, 3.0)  # Beta(1, 1) + 2 x evidence
