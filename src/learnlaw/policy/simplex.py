"""Exact Euclidean projection onto the probability simplex, for every row at once.

For a row v, the projection is w = max(v - tau, 0) with the threshold tau chosen so that w
sums to 1. Sorting v in decreasing order u, tau = (sum_{j<=rho} u_j - 1) / rho where rho is the
largest k with u_k > (sum_{j<=k} u_j - 1) / k. O(N log N) per row, exact up to rounding, and
never negative (unlike a generic QP solver).

When a row's entries are spread over several processes (``learnlaw.distributed``), the same
threshold is found without gathering the row: Michelot's algorithm starts from the mean
threshold (sum v - 1) / N, a lower bound, and repeats tau <- (sum of the entries above tau - 1)
/ (their count). The support only shrinks, so it stops after a handful of all-reduces of the
sums and counts; the last tau is the formula above over the same support (exact to rounding).
"""

from __future__ import annotations

import torch

from learnlaw.distributed import SINGLE, Comm


def project_rows_to_simplex(v: torch.Tensor, comm: Comm = SINGLE) -> torch.Tensor:
    """Project each row of ``v`` (R x N) onto {w : w >= 0, sum w = 1}; with several processes
    ``v`` holds this rank's columns of every row."""
    if not comm.single:
        return project_rows_by_threshold_search(v, comm)
    n = v.shape[-1]
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = torch.cumsum(u, dim=-1) - 1.0
    k = torch.arange(1, n + 1, device=v.device, dtype=v.dtype)
    support = (u - css / k) > 0
    rho = support.sum(dim=-1, keepdim=True).clamp_min(1)  # the first entry is always in the support
    tau = torch.gather(css, -1, rho - 1) / rho.to(v.dtype)
    return (v - tau).clamp_min(0.0)


def project_rows_by_threshold_search(v: torch.Tensor, comm: Comm = SINGLE) -> torch.Tensor:
    """The same projection by Michelot's threshold search, over columns spread across ranks."""

    def sums(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.where(mask, v, 0.0).sum(dim=-1, keepdim=True)
        c = mask.sum(dim=-1, keepdim=True).to(v.dtype)
        return comm.sum(s, c)

    # the row's largest entry always stays in the support (as in the sorted version), so the
    # count never reaches zero even when 1 / count vanishes against huge entries in rounding
    top = v == comm.max(v.amax(dim=-1, keepdim=True))
    support = torch.ones_like(v, dtype=torch.bool)
    total, count = sums(support)
    while True:
        tau = (total - 1.0) / count
        support = support & ((v > tau) | top)
        total, new_count = sums(support)
        if torch.equal(new_count, count):  # the support is stable: tau is the exact threshold
            break
        count = new_count
    return (v - (total - 1.0) / count).clamp_min(0.0)
