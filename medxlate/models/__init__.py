"""Model families. Each subpackage (except ``nets``) is one family and exposes ``SPECS``,
a list of :class:`~medxlate.models.registry.ModelSpec`, without importing torch."""
