"""What the tests share: the array backends, the table of cases, the reference implementations
and numerical helpers.  Test modules import from here, never from one another."""
