"""Actions: a pure ``plan()`` that returns a Plan with a stable hash, and a guarded ``apply()``."""
