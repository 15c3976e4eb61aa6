"""What services use to publish their changes as data products: the producer SDK, the
transactional outbox relay, and simulators of the example services."""
