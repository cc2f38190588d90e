"""The Strawberry schema of the Clients gateway."""


def sdl() -> str:
    return ""
