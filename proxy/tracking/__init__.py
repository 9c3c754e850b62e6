"""Per (agent, model) statistics, workflow tracking and explicit feedback."""
