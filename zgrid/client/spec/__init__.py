"""Spec files: YAML documents describing a deployment, checked against a JSON Schema and
for references, with every problem reported at its line and column."""
