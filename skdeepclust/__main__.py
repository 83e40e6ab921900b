"""``python -m skdeepclust``: the command line of :mod:`skdeepclust.cli`."""

from skdeepclust.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
