"""Reliability in figures (`make faults`): faults injected into real processes and fuzzed inputs
through the command line; the figures go to docs/reliability.md."""
