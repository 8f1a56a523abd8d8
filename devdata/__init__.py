"""Development data: realistic landing sets of any size and the hand-built edge cases in
`data/sample/`. For tests, benchmarks and trials; not part of the `stedi_lakehouse` package,
so neither the wheel nor the environment sent to a cluster carries it."""
