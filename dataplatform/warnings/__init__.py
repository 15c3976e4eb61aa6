"""Live warnings for operations: a store of warning transitions read from the warnings
data product, listeners for the web page's live stream, and signed webhooks."""
