"""pandera schemas of the tables the pipeline builds."""
