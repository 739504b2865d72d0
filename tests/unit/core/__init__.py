"""Unit tests of the pure decision core (controller/core/)."""
