"""The routing scenario suite (policies/replay/suite.py): table, JSON and a PNG of regret curves.

Usage: nice .venv/bin/python bench/quality_suite.py [--quick] [--json] [--plot suite.png]
       [--data-dir ../shared/data] [--seeds 3] [--seed-base 0] [--split test]
Same as ``model-manager evaluate --suite``.
"""

from __future__ import annotations

import sys

from proxy.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", "--suite", *sys.argv[1:]]))
