"""Synthetic raw data for the offshoring pipeline, from a structural model with known parameters.

The real survey (IMEFAS) and AIDA data are confidential, so the default run reads files
written here. They follow ``../shared/data-contract.md``: one survey file per year, the
AIDA export and its foreign participations, the LLMA partition and the census of local
units. Beside them, ``truth.json`` holds every true parameter and the counts a run should
reproduce. Same seed, same arguments => byte-identical files.

Library use::

    from offshoring.synth import generate
    summary = generate("data/raw", firms=17000, seed=20240607, years="2005-2012")

Command line (through the project CLI, or ``python -m offshoring.synth``)::

    offshoring synth --out DIR --firms N --seed S --years 2005-2012 [--format csv|csv.gz|parquet]
                     [--aida-format xlsx|csv]

Model: see ``offshoring.synth.outsourcing`` (dynamic random-effects probit of C&P section 3.3
with Table 2 coefficients, region spells ending with Table 3 hazard ratios) and
``config/synth.yaml`` (every parameter, with the paper's source).
"""

from offshoring.synth.cli import add_arguments, cli_main, run
from offshoring.synth.dataset import (
    GENERATOR,
    GENERATOR_VERSION,
    generate,
    load_config,
    parse_years,
    simulate,
)

__all__ = [
    "GENERATOR",
    "GENERATOR_VERSION",
    "add_arguments",
    "cli_main",
    "generate",
    "load_config",
    "parse_years",
    "run",
    "simulate",
]
