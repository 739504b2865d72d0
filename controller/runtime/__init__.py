"""Entry points for the in-cluster controller: the alert-fed reconcile loop."""
