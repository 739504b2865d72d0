"""Pure decisions: triage blocks, suspect ranking, rollback safety, recommendation.

Every function here takes data (and the clock as a parameter) and returns an
explained verdict.  No I/O, no client, no files."""
