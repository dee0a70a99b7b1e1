"""After-sales and review KPIs (SQL aggregates), and the weekly expertise level."""
