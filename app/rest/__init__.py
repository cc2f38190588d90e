"""The /v2 REST compatibility shim: parse, call the service, map to the documented JSON."""
