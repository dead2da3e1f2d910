"""python3 -m bench (what scripts/dev bench runs)."""
import sys

from bench.bench import main

sys.exit(main())
