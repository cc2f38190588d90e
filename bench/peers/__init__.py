"""Naive GraphQL peers of the gateway, for the benchmark: the same query written the way each
library's documentation shows, over the plain reference's engine, tables and key look-up."""
