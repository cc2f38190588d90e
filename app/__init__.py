"""Clients gateway: GraphQL and /v2 REST over the Clients domain of a CFDI invoicing platform."""
