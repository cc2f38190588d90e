"""Change events of clients: the transactional outbox, the events API and live streams."""
