"""Reviews: the hosted review page, the reviews customers leave, and their moderation."""
