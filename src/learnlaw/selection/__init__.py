"""Data selection from the learned policy (the PDS recipe, SPEC A8): solve the optimal-learning
problem on a small proxy, fit a cheap data scorer to its solution, score a whole corpus, keep
the best part, and pre-train on it with an ordinary optimiser (``learnlaw.pretrain``).

    from learnlaw.selection import load_select_config, select
    result = select(load_select_config("select-mixture"), out="runs/select")
"""

from learnlaw.selection.config import SelectConfig, load_select_config
from learnlaw.selection.mixture import Mixture, MixtureConfig
from learnlaw.selection.proxy import ProxyConfig, ProxySolution, solve_proxy
from learnlaw.selection.scorer import DataScorer, sequence_features
from learnlaw.selection.select import SelectionResult, choose, select

__all__ = [
    "DataScorer",
    "Mixture",
    "MixtureConfig",
    "ProxyConfig",
    "ProxySolution",
    "SelectConfig",
    "SelectionResult",
    "choose",
    "load_select_config",
    "select",
    "sequence_features",
    "solve_proxy",
]
