"""Pure DataFrame -> DataFrame transforms: no I/O, no session, no settings."""
