"""Kafka adapters: the producer SDK, topic administration, and the dead-letter writer."""
