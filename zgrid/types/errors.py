"""Errors of zgrid.types.

TypesError
└── InvalidDeployment        a deployment or workload breaks a rule; names the field
    ├── UpdateRefused        version N+1 may not replace version N this way
    └── SignaturesInsufficient   the signature requirement is not met
"""

from __future__ import annotations

from zgrid.errors import ZgridError

__all__ = ["InvalidDeployment", "SignaturesInsufficient", "TypesError", "UpdateRefused"]


class TypesError(ZgridError):
    """Root of the types package's errors."""


class InvalidDeployment(TypesError):
    """One or more fields break a rule. ``problems`` lists (field path, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        if not problems:
            raise ValueError("InvalidDeployment needs at least one problem")
        self.problems = problems
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems))

    @classmethod
    def at(cls, field: str, reason: str) -> InvalidDeployment:
        return cls([(field, reason)])

    @property
    def field(self) -> str:
        """The path of the first offending field, e.g. ``workloads[0].data.compute_capacity.cpu``."""
        return self.problems[0][0]


class UpdateRefused(InvalidDeployment):
    """The new version of a deployment may not replace the current one as proposed."""


class SignaturesInsufficient(InvalidDeployment):
    """The deployment's signatures do not satisfy its signature requirement."""
