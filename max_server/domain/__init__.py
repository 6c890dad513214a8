"""Pure business rules: no I/O, no database, no clock (time is passed in)."""
