"""Support tickets: threads and messages, business hours, and each waiting time as recorded."""
