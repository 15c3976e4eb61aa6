"""Faust stream processors: join housing supply with release demand per area and raise
threshold warnings."""
