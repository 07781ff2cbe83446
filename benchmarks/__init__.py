"""Side-by-side speed comparisons, run in one process and printed as ratios."""
