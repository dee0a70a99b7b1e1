"""The signed webhook inbox."""
