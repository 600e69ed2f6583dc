"""Domain library for the offshoring pipeline.

Readers, schemas, geography, the district procedure, spells, estimators, the
synthetic-data generator and report rendering. Never imports Dagster, so every
piece can be tested and reused from a notebook on its own.
"""

__version__ = "0.1.0"
