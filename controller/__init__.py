"""Deploy-aware rollback: find what changed before production broke, classify it,
and undo it quickly and safely on Kubernetes."""

__version__ = "0.1.0"
