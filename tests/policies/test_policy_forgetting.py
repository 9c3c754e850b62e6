"""Per-choice discounting and the empirical-Bayes pool strength of ThompsonPolicy."""

from __future__ import annotations

from policies.base import POOLED, DecisionRequest, Delta, Evidence, Table
from policies.evidence_tables import EvidenceTables
from policies.replay.scenarios import Synthetic, synthetic_stream
from policies.replay.suite import replay
from policies.replay.suite_metrics import figures
from policies.thompson import ThompsonPolicy

REQUEST = DecisionRequest("bot", "ctx", ("a", "b"))
TABLES = (Table(POOLED), Table("bot"), Table("bot", "ctx"))


def test_discount_sheds_the_finest_cells_share_from_every_table() -> None:
    policy = ThompsonPolicy(choice_discount=0.1, change_memory=0.0)
    snapshot = {
        TABLES[0]: {"a": Evidence(50.0, 30.0)},
        TABLES[1]: {"a": Evidence(20.0, 10.0)},
        TABLES[2]: {"a": Evidence(10.0, 5.0)},
    }
    found = policy.deltas(REQUEST, "a", 0.75, snapshot)
    assert found == tuple(Delta(t, "a", 0.75 - 1.0, 0.25 - 0.5) for t in TABLES)


def test_without_a_snapshot_or_discount_an_update_only_adds_the_reward() -> None:
    snapshot = {TABLES[2]: {"a": Evidence(10.0, 5.0)}}
    plain = tuple(Delta(t, "a", 0.75, 0.25) for t in TABLES)
    assert ThompsonPolicy(choice_discount=0.1).deltas(REQUEST, "a", 0.75) == plain
    unforgetting = ThompsonPolicy(choice_discount=0.0, change_memory=0.0)
    assert unforgetting.deltas(REQUEST, "a", 0.75, snapshot) == plain


def test_discounted_evidence_stays_bounded_and_keeps_tables_summed() -> None:
    policy, store = ThompsonPolicy(choice_discount=0.05), EvidenceTables()
    requests = [DecisionRequest("bot", c, ("a",)) for c in ("x", "y")]
    for step in range(2000):
        request = requests[step % 2]
        snapshot = store.load_now(policy.tables(request), request.candidates)
        store.apply_now(policy.deltas(request, "a", 1.0, snapshot))
    cells = [store.load_now([Table("bot", c)], ["a"])[Table("bot", c)]["a"].total for c in "xy"]
    agent = store.load_now([Table("bot")], ["a"])[Table("bot")]["a"].total
    assert all(abs(total - 20.0) < 1e-6 for total in cells)  # 1 / 0.05 uses per cell
    assert abs(agent - sum(cells)) < 1e-6


def _recovery(choice_discount: float) -> int | None:
    spec = Synthetic(5, near_tie=False, contexts=1, event="drop")
    stream = synthetic_stream(spec, 4000, seed=3, name="forgetting")
    policy = ThompsonPolicy(choice_discount=choice_discount, change_memory=0.0)
    picks = replay(stream, policy, 3, None)
    return figures(stream, picks, min_requests=1000).recovery[0]


def test_a_dropped_best_model_is_left_within_a_thousand_requests_only_with_discount() -> None:
    recovered = _recovery(0.01)
    assert recovered is not None and recovered <= 1000
    stuck = _recovery(0.0)
    assert stuck is None or stuck > 1000


def _sharpness(agreeing: bool, pool_strength_max: float) -> float:
    """Total pseudo-observations of a new agent's posteriors after two agents learnt."""
    others = {"a": (0.9, 0.2), "b": (0.2, 0.9)}
    newcomer_means = {"a": 0.9, "b": 0.2} if agreeing else {"a": 0.2, "b": 0.9}
    pooled, agent = {}, {}
    for model, (rate, _) in others.items():
        pooled[model] = Evidence(400 * rate, 400 * (1 - rate))
    for model, rate in newcomer_means.items():
        agent[model] = Evidence(20 * rate, 20 * (1 - rate))
        old = pooled[model]
        pooled[model] = Evidence(old.successes + 20 * rate, old.failures + 20 * (1 - rate))
    policy = ThompsonPolicy(pool_strength_max=pool_strength_max, use_context=False)
    snapshot = {Table(POOLED): pooled, Table("new"): agent}
    alphas, betas = policy.parameters(DecisionRequest("new", "", ("a", "b")), snapshot)
    return sum(alphas) + sum(betas)


def test_pool_strength_rises_when_agents_agree_and_stays_low_when_they_disagree() -> None:
    constant = _sharpness(True, 0.0)
    assert _sharpness(True, 50.0) > constant + 100.0
    assert abs(_sharpness(False, 50.0) - constant) < 1e-9


def test_discount_costs_little_on_a_stationary_case() -> None:
    spec = Synthetic(5, near_tie=False, contexts=1)
    stream = synthetic_stream(spec, 3000, seed=4, name="stationary")
    kept = figures(stream, replay(stream, ThompsonPolicy(choice_discount=0.0), 4, None)).share
    forgot = figures(stream, replay(stream, ThompsonPolicy(choice_discount=0.01), 4, None)).share
    assert forgot > kept - 0.01
