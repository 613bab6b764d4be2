"""Task metrics over the store (DESIGN §8): ``service.summarize`` for ``orchestrate metrics``."""
