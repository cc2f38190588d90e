"""Mounts the GraphQL schema (schema/) at /graphql."""

from __future__ import annotations

from fastapi import FastAPI

from app.config import Settings


def mount_graphql(app: FastAPI, settings: Settings) -> None:
    return None
