"""Asset and asset-check definitions: thin wrappers that run a SQL file or call the library."""
