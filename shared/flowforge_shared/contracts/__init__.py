"""Contracts shared by the services: the API base model and the job configuration."""
