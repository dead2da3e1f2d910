"""scripts/dev bench: run as `python3 -m bench` from the top of the tree."""
