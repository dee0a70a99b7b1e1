"""The merchant's web interface at /dashboard: pages over the same services the API uses."""
