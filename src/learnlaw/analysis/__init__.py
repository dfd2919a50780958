"""The Learning Law and the step scaling law, checked on a policy run (SPEC A3, A5).

analysis = learnlaw.analysis.analyze(result_or_run_folder)
analysis.to_json("analysis.json"); analysis.to_html("report.html")
"""

from learnlaw.analysis.analyze import Analysis, analyze
from learnlaw.analysis.learning_law import Thresholds

__all__ = ["Analysis", "Thresholds", "analyze"]
