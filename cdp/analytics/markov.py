"""Markov-chain attribution by removal effect, over aggregated channel paths.

States are channels plus ``start``, ``conversion`` and ``null``; transition
probabilities are counted from the paths. The removal effect of a channel is the
relative drop of P(conversion from start) when that channel's state leads to
``null``; credit is the removal effects normalised to the number of conversions.
Consecutive repeats of a channel are collapsed: a self-loop never changes an
absorption probability, so this only shrinks the chain.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


def _collapse(path: Sequence[str]) -> list[str]:
    out: list[str] = []
    for channel in path:
        if not out or out[-1] != channel:
            out.append(channel)
    return out


def transition_counts(
    paths: Iterable[tuple[Sequence[str], int, int]],
) -> dict[str, dict[str, float]]:
    """(path, conversions, losses) rows → counts[from][to]."""
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for path, conversions, losses in paths:
        states = [START, *_collapse(path)]
        for a, b in itertools.pairwise(states):
            counts[a][b] += conversions + losses
        counts[states[-1]][CONVERSION] += conversions
        counts[states[-1]][NULL] += losses
    return counts


def conversion_probability(
    counts: dict[str, dict[str, float]], removed: str | None = None, tol: float = 1e-12
) -> float:
    """P(reach conversion from start), by fixed-point iteration on the absorbing chain."""
    probs = {
        s: {t: n / sum(row.values()) for t, n in row.items()} for s, row in counts.items() if row
    }
    value: dict[str, float] = {s: 0.0 for s in probs}
    value[CONVERSION], value[NULL] = 1.0, 0.0
    if removed is not None:
        probs.pop(removed, None)
        value[removed] = 0.0
    for _ in range(100_000):
        delta = 0.0
        for s, row in probs.items():
            new = sum(p * value.get(t, 0.0) for t, p in row.items())
            delta = max(delta, abs(new - value[s]))
            value[s] = new
        if delta < tol:
            break
    return value.get(START, 0.0)


def removal_credit(paths: Iterable[tuple[Sequence[str], int, int]]) -> dict[str, float]:
    """Channel → conversions credited by normalised removal effect."""
    rows = list(paths)
    counts = transition_counts(rows)
    total_conversions = sum(conv for _, conv, _ in rows)
    channels = sorted({c for path, _, _ in rows for c in path})
    base = conversion_probability(counts)
    if base <= 0 or total_conversions == 0:
        return dict.fromkeys(channels, 0.0)
    effects = {c: 1.0 - conversion_probability(counts, removed=c) / base for c in channels}
    norm = sum(effects.values())
    if norm <= 0:
        return dict.fromkeys(channels, 0.0)
    return {c: total_conversions * e / norm for c, e in effects.items()}
