"""Orders: last known state and the history of states."""
