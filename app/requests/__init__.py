"""Review requests and their deliveries: rules, reasons, API."""
