"""Optimal data policies (SPEC part A): learn a weight for every training example at every step
by exact hypergradients through the training run.

    result = learnlaw.policy.optimize(task, PolicyConfig(...))      # in memory
    result = learnlaw.policy.optimize(config=load_config("perceptron-demo"), out="runs/demo")
"""

from learnlaw.policy.config import PolicyConfig, TrainConfig, load_config
from learnlaw.policy.engine import Policy
from learnlaw.policy.outer import OuterConfig
from learnlaw.policy.result import LearnedPolicy, PolicyResult
from learnlaw.policy.run import evaluate, optimize

__all__ = [
    "LearnedPolicy",
    "OuterConfig",
    "Policy",
    "PolicyConfig",
    "PolicyResult",
    "TrainConfig",
    "evaluate",
    "load_config",
    "optimize",
]
