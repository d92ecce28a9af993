"""The operator dashboard at /dashboard (issue #13)."""
