"""Plugin files the plugin tests load by path (each registers methods with the suite's decorators)."""
