"""python -m offshoring.synth --out DIR --firms N --seed S --years 2005-2012"""

from offshoring.synth.cli import cli_main

raise SystemExit(cli_main())
