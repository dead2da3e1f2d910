"""Small statistics shared by bench.py and peer_ipykernel.py."""

PERCENTILES = (1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 95, 97, 98,
               99, 99.5, 99.9)


def percentile(values, p):
    """The p-th percentile of values, interpolated between neighbours."""
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
