"""The Clients domain: validation, service (every rule), repository (persistence)."""
