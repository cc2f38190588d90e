"""Teams and API keys: who is calling, in which mode."""
