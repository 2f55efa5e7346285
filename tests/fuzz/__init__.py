"""Fuzzing of every server API and parser: short passes in `make test`, long ones in `make fuzz`."""
