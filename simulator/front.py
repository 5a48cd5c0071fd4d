"""Pareto fronts of two larger-is-better coordinates (e.g. tokens/s per user, tokens/s per GPU): pure
functions, no simulation."""
from __future__ import annotations

import math


def weakly_dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """`a` is at least as good as `b` on both coordinates."""
    return a[0] >= b[0] and a[1] >= b[1]


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """`a` is at least as good as `b` on both coordinates (larger is better) and better on one."""
    return a[0] >= b[0] and a[1] >= b[1] and (a[0] > b[0] or a[1] > b[1])


def front_mask(points: list[tuple[float, float]]) -> list[bool]:
    """For each (x, y) point, whether no other point dominates it (both larger-is-better; NaN is never on
    the front). Sorted sweep, O(n log n): a point is on the front when its y is the largest among points
    of its x and above every y of a larger x.

    >>> front_mask([(1, 5), (2, 4), (2, 3), (3, 1), (0.5, 5)])
    [True, True, False, True, False]
    """
    order = sorted((i for i, p in enumerate(points) if not (math.isnan(p[0]) or math.isnan(p[1]))),
                   key=lambda i: (-points[i][0], -points[i][1]))
    mask = [False] * len(points)
    best_right = -math.inf             # the largest y among points of strictly larger x
    start = 0
    while start < len(order):
        x = points[order[start]][0]
        end = start
        while end < len(order) and points[order[end]][0] == x:
            end += 1
        top = points[order[start]][1]  # the group is sorted by y, largest first
        for i in order[start:end]:
            mask[i] = points[i][1] == top and top > best_right
        best_right = max(best_right, top)
        start = end
    return mask
