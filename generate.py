#!/usr/bin/env python3
"""Generate monitors, rules, dashboards and alert routing from the inventory: see README.md."""

import sys

from obsbundle.cli import main

if __name__ == "__main__":
    sys.exit(main())
