"""Exact Euclidean projection onto the probability simplex, for every row at once.

For a row v, the projection is w = max(v - tau, 0) with the threshold tau chosen so that w
sums to 1. Sorting v in decreasing order u, tau = (sum_{j<=rho} u_j - 1) / rho where rho is the
largest k with u_k > (sum_{j<=k} u_j - 1) / k. O(N log N) per row, exact up to rounding, and
never negative (unlike a generic QP solver).
"""

from __future__ import annotations

import torch


def project_rows_to_simplex(v: torch.Tensor) -> torch.Tensor:
    """Project each row of ``v`` (R x N) onto {w : w >= 0, sum w = 1}."""
    n = v.shape[-1]
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = torch.cumsum(u, dim=-1) - 1.0
    k = torch.arange(1, n + 1, device=v.device, dtype=v.dtype)
    support = (u - css / k) > 0
    rho = support.sum(dim=-1, keepdim=True).clamp_min(1)  # the first entry is always in the support
    tau = torch.gather(css, -1, rho - 1) / rho.to(v.dtype)
    return (v - tau).clamp_min(0.0)
