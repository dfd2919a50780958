"""``python -m learnlaw``: the command line (also what ``torchrun -m learnlaw`` starts)."""

from learnlaw.cli import main

if __name__ == "__main__":
    main()
