"""Read-only extraction of Changes and Signals from a ClusterView (and from git)."""
